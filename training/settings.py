"""Where training data comes from: read once from the environment, then passed down."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The public IBM copy of the full Telco churn data (7,043 rows).
DEFAULT_DATA_URL = (
    "https://raw.githubusercontent.com/IBM/telco-customer-churn-on-icp4d/"
    "master/data/Telco-Customer-Churn.csv"
)
DEFAULT_DATA_SHA256 = "16320c9c1ec72448db59aa0a26a0b95401046bef5d02fd3aeb906448e3055e91"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class DataSettings(BaseSettings):
    """Data source settings, env prefix ``CHURN_``.

    Precedence when training: ``--data PATH`` > ``CHURN_DATA`` > download of
    ``CHURN_DATA_URL`` into ``CHURN_CACHE_DIR``.
    """

    model_config = SettingsConfigDict(
        env_prefix="CHURN_", extra="ignore", use_attribute_docstrings=True
    )

    data: Path | None = None
    """``CHURN_DATA``: path of a local Telco churn CSV. Default: unset, which
    means download. Used when ``--data`` is not given."""

    data_url: str = DEFAULT_DATA_URL
    """``CHURN_DATA_URL``: http(s) URL downloaded when no local file is given.
    Default: the IBM GitHub copy. Tests point it at a server on 127.0.0.1."""

    data_sha256: str = DEFAULT_DATA_SHA256
    """``CHURN_DATA_SHA256``: expected sha256 (hex) of the downloaded file. A
    mismatch is an error and the file is deleted. Default: the IBM file's."""

    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache/churn-ab")
    """``CHURN_CACHE_DIR``: where the download is kept between runs. Default:
    ``~/.cache/churn-ab``."""

    download_timeout_seconds: float = Field(default=30.0, gt=0)
    """``CHURN_DOWNLOAD_TIMEOUT_SECONDS``: socket timeout for the download, in
    seconds. Default 30. Keeps an offline machine from hanging."""

    @field_validator("data_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"CHURN_DATA_URL must be http(s), got {value!r}")
        return value

    @field_validator("data_sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        value = value.strip().lower()
        if not _SHA256.match(value):
            raise ValueError("CHURN_DATA_SHA256 must be 64 hex characters")
        return value
