"""A real ``bentoml serve`` with two entry workers, shared by the e2e tests.

Served once per model placement (issue #13): in ``PLACED_MODULES`` every test
that uses ``bento_server`` or ``placement`` runs against ``services`` and
``inline``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.bento_server import (
    PLACEMENTS,
    BentoServer,
    placement_env,
    start_bento_server,
)

# The suites that run in both placements; the rest (input validation, the
# schema fuzzer, the load-test smoke, the build, PostgreSQL) do not depend on
# where the models run and are served in the default placement only.
PLACED_MODULES = frozenset(
    {"test_serving", "test_faults", "test_experiment", "test_monitoring_live"}
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if "placement" in metafunc.fixturenames and module in PLACED_MODULES:
        metafunc.parametrize("placement", PLACEMENTS, indirect=True, scope="session")


@pytest.fixture(scope="session")
def placement(request: pytest.FixtureRequest) -> str:
    """``CHURN_AB_MODEL_PLACEMENT`` of the servers a test gets."""
    return str(getattr(request, "param", "services"))


@pytest.fixture(scope="session")
def bento_server(
    trained_home: Path, tmp_path_factory: pytest.TempPathFactory, placement: str
) -> Iterator[BentoServer]:
    server = start_bento_server(
        trained_home,
        tmp_path_factory.mktemp(f"serve-{placement}"),
        env=placement_env(placement),
    )
    try:
        yield server
    finally:
        leftover = server.stop()
    assert not leftover, f"bentoml serve left processes behind: {leftover}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
