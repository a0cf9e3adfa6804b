"""Data source precedence and the checksum-verified download, against 127.0.0.1."""

from __future__ import annotations

import csv
import hashlib
import io
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import ValidationError

from churn_features.schema import EXAMPLE_CUSTOMER, FEATURE_ORDER, ID_COLUMN
from training.data import load_training_data
from training.download import cached_path
from training.errors import ChecksumMismatchError, DataUnavailableError
from training.settings import DataSettings


def csv_bytes(rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([ID_COLUMN, *FEATURE_ORDER, "Churn"])
    for i in range(rows):
        values = [EXAMPLE_CUSTOMER[name] for name in FEATURE_ORDER]
        writer.writerow([f"C{i}", *values, "Yes" if i % 2 else "No"])
    return out.getvalue().encode()


@dataclass
class FileServer:
    """A one-file HTTP server on 127.0.0.1 that counts its requests."""

    body: bytes
    requests: list[str] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def server() -> Iterator[FileServer]:
    state = FileServer(body=csv_bytes(5))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            if self.path != "/churn.csv":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep pytest output clean

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/churn.csv"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
    assert not thread.is_alive()


def unused_port() -> int:
    # Bind then release: nothing listens there afterwards, so connecting is
    # refused at once instead of waiting for a timeout.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_for(url: str, sha256: str, cache: Path) -> DataSettings:
    return DataSettings(
        data=None,
        data_url=url,
        data_sha256=sha256,
        cache_dir=cache,
        download_timeout_seconds=5,
    )


def test_good_checksum_download_is_cached_and_loaded(
    server: FileServer, tmp_path: Path
) -> None:
    sha = hashlib.sha256(server.body).hexdigest()
    settings = settings_for(server.url, sha, tmp_path / "cache")

    data = load_training_data(None, settings)

    assert data.rows == 5
    assert data.sha256 == sha
    assert server.url in data.source
    cached = cached_path(tmp_path / "cache", sha)
    assert cached.read_bytes() == server.body
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [cached.name]

    again = load_training_data(None, settings)
    assert again.sha256 == sha
    assert server.requests == ["/churn.csv"], "second load must use the cache"


def test_corrupted_cache_is_downloaded_again(
    server: FileServer, tmp_path: Path
) -> None:
    sha = hashlib.sha256(server.body).hexdigest()
    cached = cached_path(tmp_path, sha)
    cached.write_bytes(b"tampered")

    data = load_training_data(None, settings_for(server.url, sha, tmp_path))

    assert data.sha256 == sha
    assert cached.read_bytes() == server.body
    assert len(server.requests) == 1


def test_bad_checksum_is_an_error_and_keeps_no_file(
    server: FileServer, tmp_path: Path
) -> None:
    expected = hashlib.sha256(b"something else").hexdigest()
    cache = tmp_path / "cache"

    with pytest.raises(ChecksumMismatchError) as caught:
        load_training_data(None, settings_for(server.url, expected, cache))

    assert caught.value.expected == expected
    assert caught.value.actual == hashlib.sha256(server.body).hexdigest()
    assert expected in str(caught.value)
    assert list(cache.iterdir()) == []


def test_unreachable_url_names_both_local_options(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{unused_port()}/churn.csv"
    settings = settings_for(url, "0" * 64, tmp_path / "cache")

    with pytest.raises(DataUnavailableError) as caught:
        load_training_data(None, settings)

    message = str(caught.value)
    assert "--data" in message
    assert "CHURN_DATA" in message
    assert list((tmp_path / "cache").iterdir()) == []


def test_http_error_is_a_data_unavailable_error(
    server: FileServer, tmp_path: Path
) -> None:
    url = server.url.replace("churn.csv", "missing.csv")
    with pytest.raises(DataUnavailableError, match="HTTP 404"):
        load_training_data(None, settings_for(url, "0" * 64, tmp_path))


def test_explicit_path_beats_environment_and_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = tmp_path / "explicit.csv"
    explicit.write_bytes(csv_bytes(3))
    env_file = tmp_path / "env.csv"
    env_file.write_bytes(csv_bytes(4))
    monkeypatch.setenv("CHURN_DATA", str(env_file))
    monkeypatch.setenv("CHURN_DATA_URL", f"http://127.0.0.1:{unused_port()}/x")
    monkeypatch.setenv("CHURN_CACHE_DIR", str(tmp_path / "cache"))

    assert load_training_data(explicit).rows == 3
    from_env = load_training_data(None)
    assert from_env.rows == 4
    assert "CHURN_DATA" in from_env.source
    assert not (tmp_path / "cache").exists()


def test_missing_explicit_file_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    settings = settings_for("http://127.0.0.1:9/x", "0" * 64, tmp_path / "cache")
    with pytest.raises(DataUnavailableError, match="--data"):
        load_training_data(tmp_path / "nope.csv", settings)


def test_missing_env_file_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHURN_DATA", str(tmp_path / "nope.csv"))
    with pytest.raises(DataUnavailableError, match="CHURN_DATA"):
        load_training_data(None)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("CHURN_DATA_SHA256", "not-hex"), ("CHURN_DATA_URL", "ftp://example/x.csv")],
)
def test_bad_settings_are_rejected_at_start(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=variable):
        DataSettings()
