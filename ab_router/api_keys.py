"""API keys: generated once, stored only as salted hashes, each with a name.

A key file holds one key per line, ``name:salt:hash`` with an optional
``:rate:burst`` (requests, or batch rows, per second and the bucket size);
``#`` starts a comment. ``hash`` is HMAC-SHA256 keyed by the per-key random
``salt`` over the key. No slow KDF (scrypt, PBKDF2): those protect secrets
people choose and can guess, while every key here is 256 random bits from
``secrets``, out of reach of any guessing however fast the hash; a fast hash
also means an attacker sending random keys costs microseconds, not a
scrypt's tens of milliseconds each (``benchmarks/access_check.py`` measures both).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from ab_router.errors import ConfigError

KEY_PREFIX = "cak_"  # "churn-ab key": recognisable in a leaked config or log
KEY_BYTES = 32
SALT_BYTES = 16
MAX_KEY_CHARS = 128  # longer presented keys are refused unhashed
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class KeyEntry:
    """One stored key: its name (a metric label and in logs), never the key."""

    name: str
    salt: bytes
    digest: bytes
    rate: float | None = None
    burst: float | None = None

    def matches(self, presented: bytes) -> bool:
        """Constant-time comparison of the presented key's hash."""
        return hmac.compare_digest(hash_key(presented, self.salt), self.digest)

    def to_line(self) -> str:
        line = f"{self.name}:{self.salt.hex()}:{self.digest.hex()}"
        if self.rate is not None:
            line += f":{self.rate:g}:{self.burst if self.burst is not None else 0:g}"
        return line


def hash_key(key: bytes, salt: bytes) -> bytes:
    return hmac.digest(salt, key, hashlib.sha256)


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def new_entry(
    name: str, key: str, *, rate: float | None = None, burst: float | None = None
) -> KeyEntry:
    _check_name(name, "name")
    salt = secrets.token_bytes(SALT_BYTES)
    return KeyEntry(name, salt, hash_key(key.encode(), salt), rate, burst)


def _check_name(name: str, where: str) -> None:
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"{where}: key name {name!r} must be 1-32 of a-z, 0-9, '_', '-' "
            "(it becomes a metric label)",
            field="api_keys_file",
        )


def _positive(text: str, what: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise ConfigError(
            f"{where}: {what} must be a positive number, got {text!r}",
            field="api_keys_file",
        )
    return value


def parse_keys(text: str, source: str = "key file") -> dict[str, KeyEntry]:
    """Every entry of a key file by name; a bad line raises naming it."""
    entries: dict[str, KeyEntry] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source} line {number}"
        parts = line.split(":")
        if len(parts) not in (3, 5):
            raise ConfigError(
                f"{where}: expected name:salt:hash or name:salt:hash:rate:burst",
                field="api_keys_file",
            )
        name, salt_hex, digest_hex = parts[:3]
        _check_name(name, where)
        if name in entries:
            raise ConfigError(f"{where}: key name {name!r} appears twice")
        try:
            salt, digest = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
        except ValueError:
            raise ConfigError(
                f"{where}: salt and hash must be hex", field="api_keys_file"
            ) from None
        if len(digest) != hashlib.sha256().digest_size or not salt:
            raise ConfigError(
                f"{where}: not a hash this version writes", field="api_keys_file"
            )
        rate = burst = None
        if len(parts) == 5:
            rate = _positive(parts[3], "rate", where)
            burst = _positive(parts[4], "burst", where)
        entries[name] = KeyEntry(name, salt, digest, rate, burst)
    return entries


def read_keys(path: Path) -> dict[str, KeyEntry]:
    return parse_keys(path.read_text(encoding="utf-8"), str(path))


def add_key(
    path: Path, name: str, *, rate: float | None = None, burst: float | None = None
) -> str:
    """Append a new key's entry to ``path`` (created 0600) and return the key.

    The key itself is not stored anywhere: the caller shows it once.
    """
    existing = read_keys(path) if path.exists() else {}
    if name in existing:
        raise ConfigError(f"{path}: a key named {name!r} exists; remove it first")
    if (rate is None) != (burst is None):
        raise ConfigError("give both --rate and --burst, or neither")
    key = generate_key()
    entry = new_entry(name, key, rate=rate, burst=burst)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if text and not text.endswith("\n"):
        text += "\n"
    _write_private(path, text + entry.to_line() + "\n")
    return key


def remove_key(path: Path, name: str) -> None:
    """Drop ``name``'s entry; comments and other entries stay as they were."""
    entries = read_keys(path)
    if name not in entries:
        raise ConfigError(f"{path}: no key named {name!r}")
    kept = [
        raw
        for raw in path.read_text(encoding="utf-8").splitlines()
        if raw.split("#", 1)[0].strip().split(":", 1)[0] != name
    ]
    _write_private(path, "".join(line + "\n" for line in kept))


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically (a reader sees the old or the new file)."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    temporary.touch(mode=0o600)
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)
