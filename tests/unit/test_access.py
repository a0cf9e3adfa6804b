"""API keys (stored hashed, reloaded on change) and per-key rate limits."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from ab_router.api_keys import add_key, parse_keys, read_keys, remove_key
from ab_router.cli import main
from ab_router.errors import ConfigError, PayloadTooLargeError
from serving.access import AccessControl, access_control
from serving.http_errors import ApiKeyError, RateLimitedError, render_error
from serving.request_guard import RequestGuardMiddleware
from serving.settings import AccessSettings, SettingsError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _headers(key: str | None) -> list[tuple[bytes, bytes]]:
    base = [(b"host", b"x"), (b"content-type", b"application/json")]
    return (
        base if key is None else [*base, (b"authorization", f"Bearer {key}".encode())]
    )


def _access(path: Path, clock: Clock, workers: int = 1, **kw: Any) -> AccessControl:
    return AccessControl(path, entry_workers=workers, clock=clock, count=False, **kw)


def test_key_file_holds_only_salted_hashes_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    first = add_key(path, "partner-a")
    second = add_key(path, "partner-b", rate=5, burst=10)
    text = path.read_text()
    assert first not in text and second not in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    entries = read_keys(path)
    assert sorted(entries) == ["partner-a", "partner-b"]
    assert entries["partner-a"].matches(first.encode())
    assert not entries["partner-a"].matches(second.encode())
    assert entries["partner-a"].salt != entries["partner-b"].salt
    assert (entries["partner-b"].rate, entries["partner-b"].burst) == (5, 10)
    with pytest.raises(ConfigError, match="exists"):
        add_key(path, "partner-a")
    remove_key(path, "partner-a")
    assert sorted(read_keys(path)) == ["partner-b"]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("Bad Name:00:" + "00" * 32, "key name"),
        ("a:zz:" + "00" * 32, "hex"),
        ("a:00:0011", "not a hash"),
        ("a:00:" + "00" * 32 + ":0:1", "rate"),
        ("a:00", "expected name:salt:hash"),
    ],
)
def test_a_bad_key_line_is_named(line: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=f"keys line 2: .*{problem}"):
        parse_keys("# comment\n" + line, "keys")


def test_cli_prints_the_key_once_and_stores_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys"
    assert main(["api-key", "add", "ops", "--file", str(path)]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("cak_") and key not in path.read_text()
    assert read_keys(path)["ops"].matches(key.encode())
    assert main(["api-key", "add", "Not Valid", "--file", str(path)]) == 2


def test_missing_unknown_and_valid_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    key = add_key(path, "partner-a")
    access = _access(path, Clock())
    assert access.authenticate(_headers(key)) == "partner-a"
    assert access.authenticate(_headers(key)) == "partner-a"  # cached
    for presented in (None, key + "x", "cak_" + "A" * 43, "x" * 10_000):
        with pytest.raises(ApiKeyError) as refused:
            access.authenticate(_headers(presented))
        assert refused.value.status == 401
    with pytest.raises(ApiKeyError):
        access.authenticate([(b"authorization", f"Basic {key}".encode())])


def test_keys_rotate_when_the_file_changes_without_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    old = add_key(path, "old")
    clock = Clock()
    access = _access(path, clock)
    assert access.authenticate(_headers(old)) == "old"
    new = add_key(path, "new")
    remove_key(path, "old")
    clock.now += 1.5
    assert access.authenticate(_headers(new)) == "new"
    with pytest.raises(ApiKeyError):
        access.authenticate(_headers(old))
    # A broken edit keeps the keys in force rather than opening the API.
    path.write_text("garbage\n")
    clock.now += 1.5
    assert access.authenticate(_headers(new)) == "new"


def test_without_a_key_file_the_api_is_open() -> None:
    assert access_control(AccessSettings(), entry_workers=2) is None


def test_a_missing_key_file_stops_the_start_naming_the_setting(tmp_path: Path) -> None:
    settings = AccessSettings(api_keys_file=tmp_path / "absent")
    with pytest.raises(SettingsError, match="CHURN_AB_API_KEYS_FILE"):
        access_control(settings, entry_workers=2)


def test_rate_limit_is_the_workers_share_and_refills(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    key = add_key(path, "limited", rate=10, burst=10)
    clock = Clock()
    access = _access(path, clock, workers=2)  # this worker: 5 rows/s, bucket 5
    name = access.authenticate(_headers(key))
    for _ in range(5):
        access.admit(name, 1, "Authorization")
    with pytest.raises(RateLimitedError) as limited:
        access.admit(name, 1, "Authorization")
    assert limited.value.status == 429 and limited.value.retry_after_s == 1
    clock.now += 0.5  # 2.5 rows back
    access.admit(name, 2, "customers")
    with pytest.raises(RateLimitedError):
        access.admit(name, 1, "Authorization")
    with pytest.raises(PayloadTooLargeError, match="burst"):
        access.admit(name, 6, "customers")


def test_default_limit_applies_to_keys_without_their_own(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    add_key(path, "plain")
    add_key(path, "own", rate=100, burst=200)
    access = _access(path, Clock(), default_rate=2.0)
    assert (access.limit_of("plain").rate, access.limit_of("plain").burst) == (2, 2)  # type: ignore[union-attr]
    assert access.limit_of("own").burst == 200  # type: ignore[union-attr]
    assert _access(path, Clock()).limit_of("plain") is None


def test_a_429_answer_carries_retry_after_and_a_json_error() -> None:
    answer = render_error(
        RateLimitedError("over", retry_after_s=3, field="Authorization")
    )
    assert answer.status == 429
    assert answer.headers["retry-after"] == "3"
    assert json.loads(answer.body)["error"]["code"] == "rate_limited"


def _call(guard: RequestGuardMiddleware, path: str, body: Any, key: str | None) -> int:
    sent: list[dict[str, Any]] = []
    raw = json.dumps(body).encode()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": _headers(key)}
    asyncio.run(guard(scope, receive, send))
    return int(sent[0]["status"])


def test_guard_refuses_before_the_app_and_counts_batch_rows(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    key = add_key(path, "batcher", rate=4, burst=4)
    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    guard = RequestGuardMiddleware(
        app, max_body_bytes=1 << 20, access=_access(path, Clock())
    )
    assert _call(guard, "/predict", {}, None) == 401
    assert _call(guard, "/explain", {}, "cak_wrong") == 401
    assert reached == []
    assert _call(guard, "/predict_batch", {"customers": [{}, {}, {}]}, key) == 200
    assert _call(guard, "/feedback_batch", {"labels": [{}, {}]}, key) == 429
    assert _call(guard, "/predict", {}, key) == 200
    assert _call(guard, "/predict", {}, key) == 429
    assert reached == ["/predict_batch", "/predict"]
    assert _call(guard, "/health", {}, None) == 200  # not a guarded route
