"""Admin endpoints need the bearer token; without one configured they refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from ab_router.errors import AdminDisabledError, UnauthorizedError
from serving.entry import EntryApp
from serving.settings import load_settings


def entry(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, token: str | None
) -> EntryApp:
    monkeypatch.setenv("CHURN_AB_LEDGER_PATH", str(tmp_path / "ledger.sqlite3"))
    if token is None:
        monkeypatch.delenv("CHURN_AB_ADMIN_TOKEN", raising=False)
    else:
        monkeypatch.setenv("CHURN_AB_ADMIN_TOKEN", token)
    return EntryApp(load_settings(), scorers={}, model_descriptions={})


def test_no_token_configured_refuses_every_caller(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app = entry(monkeypatch, tmp_path, None)
    for header in (None, "Bearer ", "Bearer anything"):
        with pytest.raises(AdminDisabledError) as info:
            app.authorize(header)
        assert info.value.status == 403
        assert "CHURN_AB_ADMIN_TOKEN" in info.value.message


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer wrong", "Basic s3cret", "bearer s3cret!"]
)
def test_wrong_or_missing_token_is_401(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, header: str | None
) -> None:
    app = entry(monkeypatch, tmp_path, "s3cret")
    with pytest.raises(UnauthorizedError) as info:
        app.authorize(header)
    assert info.value.status == 401 and info.value.field == "Authorization"


def test_right_token_is_accepted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app = entry(monkeypatch, tmp_path, "s3cret")
    assert app.authorize("Bearer s3cret") == "admin"
    assert app.authorize("bearer s3cret") == "admin"  # the scheme is case-blind
