"""A real ``bentoml serve`` with two entry workers, shared by the e2e tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.bento_server import BentoServer, start_bento_server


@pytest.fixture(scope="session")
def bento_server(
    trained_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BentoServer]:
    server = start_bento_server(trained_home, tmp_path_factory.mktemp("serve"))
    try:
        yield server
    finally:
        leftover = server.stop()
    assert not leftover, f"bentoml serve left processes behind: {leftover}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
