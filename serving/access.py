"""Optional API keys and per-key rate limits for the public API routes.

``AccessControl.authenticate`` names the key a request presents (401 when it
presents none or an unknown one) and ``admit`` charges the key's token bucket
with the request's rows (429 with ``Retry-After`` past the limit). Both run in
``RequestGuardMiddleware`` before BentoML sees the request, so a refused
request is never scored and never becomes an exposure.

Cost: a presented key is verified against the key file once per worker; the
result is cached under a keyed BLAKE2b digest of the key with a per-process
random secret (the plain key is never kept; BLAKE2b's keyed mode is a MAC and
measured 2.5x faster than HMAC-SHA256 here). A cached request costs that
digest, a dict lookup and the bucket arithmetic: ``benchmarks/access_check.py``
measures it.

Limits are per worker: each entry worker's bucket holds ``rate /
entry_workers`` and ``burst / entry_workers``, so an instance never admits
more than ``rate × t + burst`` rows of a key in any window ``t``; a client
whose requests all reach one worker (a single keep-alive connection) gets as
little as ``rate / entry_workers``. A bucket shared through an mmap'd file
and a lock measured 4-12x as much (``benchmarks/access_check.py``);
README "Security" states the trade.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ab_router.api_keys import MAX_KEY_CHARS, KeyEntry, read_keys
from ab_router.errors import AbRouterError, PayloadTooLargeError
from serving.http_errors import ApiKeyError, RateLimitedError
from serving.metrics import PREFIX
from serving.settings import ENV_PREFIX, AccessSettings, SettingsError

logger = logging.getLogger("churn_ab.access")

RELOAD_CHECK_S = 1.0
LOG_EVERY_S = 60.0
MAX_CACHED_KEYS = 10_000
_AUTHORIZATION = b"authorization"


@dataclass(slots=True)
class TokenBucket:
    rate: float  # tokens per second
    capacity: float
    tokens: float
    updated: float

    def take(self, cost: float, now: float) -> float:
        """Take ``cost`` tokens, or return the seconds until they will be there."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if cost <= self.tokens:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate


@dataclass(frozen=True)
class Limit:
    rate: float
    burst: float


class _Throttled:
    """Log a repeated event once per ``LOG_EVERY_S`` per subject."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._last: dict[tuple[str, str], float] = {}

    def __call__(self, event: str, subject: str, message: str, *args: Any) -> None:
        now = self._clock()
        if now - self._last.get((event, subject), -math.inf) >= LOG_EVERY_S:
            self._last[(event, subject)] = now
            logger.warning(message, *args)


@functools.cache
def _rate_limited_counter() -> Any:
    import prometheus_client as prom  # after PROMETHEUS_MULTIPROC_DIR is set

    return prom.Counter(
        f"{PREFIX}rate_limited",
        "Requests refused with 429 by API key name.",
        ["key"],
    )


class AccessControl:
    def __init__(
        self,
        keys_file: Path | None,
        *,
        entry_workers: int,
        default_rate: float | None = None,
        default_burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        count: bool = True,
    ) -> None:
        self.keys_file = keys_file
        self.entry_workers = entry_workers
        self.default_rate = default_rate
        self.default_burst = default_burst
        self._clock = clock
        self._count = count
        self._secret = secrets.token_bytes(32)
        self._entries: dict[str, KeyEntry] = {}
        self._verified: dict[bytes, str | None] = {}
        self._buckets: dict[str, TokenBucket | None] = {}  # None: unlimited
        self._file_id: tuple[int, int, int] | None = None
        self._next_reload_check = 0.0
        self._log = _Throttled(clock)
        self._series_ready = False
        if keys_file is not None:
            self._load(keys_file)  # at start a bad file raises: the start stops

    @property
    def key_names(self) -> list[str]:
        return sorted(self._entries)

    # -- keys ----------------------------------------------------------------

    def authenticate(self, headers: Iterable[tuple[bytes, bytes]]) -> str | None:
        """The name of the key the request presents; None when keys are off."""
        if self.keys_file is None:
            return None
        self._maybe_reload(self.keys_file)
        if not self._series_ready:
            self._create_series()
        presented = _bearer(headers)
        if presented is None:
            self._log("missing", "", "request without an API key refused (401)")
            raise ApiKeyError(
                "an API key is required: 'Authorization: Bearer <key>'",
                field="Authorization",
            )
        cache_key = hashlib.blake2b(
            presented, key=self._secret, digest_size=16
        ).digest()
        try:
            name = self._verified[cache_key]
        except KeyError:
            name = self._verify(presented)
            if len(self._verified) >= MAX_CACHED_KEYS:
                self._verified.clear()  # bounded, whatever a caller sends
            self._verified[cache_key] = name
        if name is None:
            self._log("unknown", "", "request with an unknown API key refused (401)")
            raise ApiKeyError("the API key is not valid", field="Authorization")
        return name

    def _verify(self, presented: bytes) -> str | None:
        if len(presented) > MAX_KEY_CHARS:
            return None
        found = None
        for entry in self._entries.values():  # no early exit: same work for all
            if entry.matches(presented):
                found = entry.name
        return found

    def _maybe_reload(self, path: Path) -> None:
        now = self._clock()
        if now < self._next_reload_check:
            return
        self._next_reload_check = now + RELOAD_CHECK_S
        try:
            info = path.stat()
        except OSError as exc:
            self._log(
                "reload", str(path), "API key file unreadable, keys kept: %s", exc
            )
            return
        if (info.st_mtime_ns, info.st_size, info.st_ino) != self._file_id:
            try:
                self._load(path)
            except (OSError, AbRouterError) as exc:
                self._log("reload", str(path), "API key file not reloaded: %s", exc)

    def _create_series(self) -> None:
        # On the first request, in the worker (never at import, in the
        # serving process): every key's series exists at 0 before its first 429.
        if self._count:
            for name in self._entries:
                _rate_limited_counter().labels(name)
        self._series_ready = True

    def _load(self, path: Path) -> None:
        info = path.stat()
        entries = read_keys(path)
        old = self._entries
        self._entries = entries
        self._verified = {}
        # A key whose limit did not change keeps its bucket (and what it used).
        self._buckets = {
            n: b
            for n, b in self._buckets.items()
            if n in entries
            and (old[n].rate, old[n].burst) == (entries[n].rate, entries[n].burst)
        }
        self._file_id = (info.st_mtime_ns, info.st_size, info.st_ino)
        # WARNING, not INFO: who may call is an audit event, and BentoML's
        # log configuration drops our INFO lines.
        logger.warning(
            "API keys loaded from %s: %s", path, ", ".join(sorted(entries)) or "none"
        )
        self._series_ready = False

    # -- limits --------------------------------------------------------------

    def limit_of(self, name: str) -> Limit | None:
        entry = self._entries.get(name)
        rate = entry.rate if entry is not None and entry.rate else self.default_rate
        if rate is None:
            return None
        burst = (
            entry.burst
            if entry is not None and entry.rate and entry.burst
            else self.default_burst or rate
        )
        return Limit(rate, burst)

    def admit(self, name: str | None, rows: int, field: str) -> None:
        """Charge ``rows`` to the key's bucket, or refuse the request."""
        if name is None:
            return
        now = self._clock()
        try:
            bucket = self._buckets[name]
        except KeyError:
            bucket = self._new_bucket(name, now)
        if bucket is None:
            return
        if rows > bucket.capacity:
            raise PayloadTooLargeError(
                f"{rows} rows exceed the burst of API key {name!r} "
                f"({bucket.capacity:g} rows per entry worker); send smaller batches",
                field=field,
            )
        wait_s = bucket.take(rows, now)
        if wait_s > 0:
            self._refuse(name, wait_s)

    def _new_bucket(self, name: str, now: float) -> TokenBucket | None:
        limit = self.limit_of(name)
        bucket = None
        if limit is not None:
            share = 1.0 / self.entry_workers
            capacity = max(limit.burst * share, 1.0)
            bucket = TokenBucket(limit.rate * share, capacity, capacity, now)
        self._buckets[name] = bucket
        return bucket

    def _refuse(self, name: str, wait_s: float) -> None:
        limit = self.limit_of(name)
        assert limit is not None  # only limited keys have a bucket
        if self._count:
            _rate_limited_counter().labels(name).inc()
        self._log("limited", name, "API key %r is over its rate limit (429)", name)
        raise RateLimitedError(
            f"API key {name!r} is over its limit of {limit.rate:g} rows/s "
            f"(burst {limit.burst:g})",
            retry_after_s=max(1, math.ceil(wait_s)),
            field="Authorization",
        )


def _bearer(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if name.lower() == _AUTHORIZATION:
            scheme, _, token = value.partition(b" ")
            token = token.strip()
            if scheme.lower() == b"bearer" and token:
                return token
            return None
    return None


def access_control(
    settings: AccessSettings, entry_workers: int
) -> AccessControl | None:
    """The access control the settings ask for; None leaves the API open.

    A key file that is missing or malformed at start stops the start, naming
    the setting (later, a bad edit keeps the keys in force and is logged).
    """
    if settings.api_keys_file is None:
        return None
    variable = f"{ENV_PREFIX}API_KEYS_FILE"
    if not settings.api_keys_file.is_file():
        raise SettingsError(
            f"invalid configuration: {variable}: {settings.api_keys_file} is not a "
            "file (create it with: python -m ab_router api-key add NAME --file PATH)"
        )
    try:
        return AccessControl(
            settings.api_keys_file,
            entry_workers=entry_workers,
            default_rate=settings.api_key_rate,
            default_burst=settings.api_key_burst,
        )
    except (OSError, AbRouterError) as exc:
        raise SettingsError(f"invalid configuration: {variable}: {exc}") from None


def announce(access: AccessControl | None) -> None:
    """Say at start, in every entry worker's log, when the API is open (with
    keys, loading the file already logged their names)."""
    if access is None:
        logger.warning(
            "API keys are OFF: /predict, /predict_batch, /feedback, /feedback_batch "
            "and /explain answer anyone who can reach this port "
            "(set CHURN_AB_API_KEYS_FILE to require keys)"
        )
