"""Fetch the data file once into a cache, trusting it only if its sha256 matches."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from training.errors import ChecksumMismatchError, DataUnavailableError

_CHUNK = 1 << 16


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cached_path(cache_dir: Path, sha256: str) -> Path:
    """Where the file with this checksum lives in the cache.

    The checksum is in the name so that changing the expected checksum never
    picks up a stale file.
    """
    return cache_dir / f"telco-customer-churn-{sha256[:16]}.csv"


def fetch(url: str, sha256: str, cache_dir: Path, timeout_seconds: float) -> Path:
    """Return the cached file for ``sha256``, downloading it from ``url`` if needed.

    The download goes to a temporary file in the cache directory and is only
    renamed into place after its checksum matches, so a failed or tampered
    download never leaves a file that a later run would trust.
    """
    target = cached_path(cache_dir, sha256)
    if target.is_file():
        if file_sha256(target) == sha256:
            return target
        # Corrupted on disk since it was verified: fetch a fresh copy.
        target.unlink()

    cache_dir.mkdir(parents=True, exist_ok=True)
    handle, partial_name = tempfile.mkstemp(
        prefix=".download-", suffix=".part", dir=cache_dir
    )
    partial = Path(partial_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout_seconds) as response:
                    for chunk in iter(lambda: response.read(_CHUNK), b""):
                        digest.update(chunk)
                        out.write(chunk)
            except (urllib.error.URLError, OSError, ValueError) as error:
                raise DataUnavailableError(
                    f"cannot download the data from {url} ({_reason(error)}); "
                    "pass --data PATH or set CHURN_DATA to a local CSV"
                ) from error
        actual = digest.hexdigest()
        if actual != sha256:
            raise ChecksumMismatchError(url, sha256, actual)
        os.replace(partial, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return target


def _reason(error: Exception) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return str(error) or type(error).__name__
