"""tests/integration: other processes (PostgreSQL, promtool, jsonnet, CLIs),
no long-running server; marked so a run can pick or skip the layer."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
