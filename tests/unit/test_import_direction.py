"""Imports run one way: ``service.py`` -> ``serving`` -> ``ab_router`` /
``churn_features``; ``training`` -> ``churn_features``; no package cycles.

The rules come from docs/architecture.md. The planted-import tests prove the
checker would catch a violation, so a pass means something.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.import_graph import cycles, forbidden_edges, package_graph

REPO_ROOT = Path(__file__).resolve().parents[2]

#: ``{package: what it must never import}``.
RULES = {
    "ab_router": ("serving", "bentoml", "service"),
    "churn_features": ("ab_router", "serving", "training", "service", "bentoml"),
    "training": ("serving", "service"),
    "serving": ("service", "training", "benchmarks", "tests"),
}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    # Parsing every .py file of the repository once, not once per test.
    return package_graph(REPO_ROOT)


def test_no_package_imports_what_the_architecture_forbids(
    graph: dict[str, set[str]],
) -> None:
    assert forbidden_edges(graph, RULES) == []


def test_no_import_cycles_between_top_level_packages(
    graph: dict[str, set[str]],
) -> None:
    assert cycles(graph) == []


def test_the_graph_sees_the_expected_edges(graph: dict[str, set[str]]) -> None:
    # Guards the parser itself: if it found no imports, the rules would pass.
    assert {"serving", "ab_router", "churn_features", "bentoml"} <= graph["service"]
    assert {"ab_router", "churn_features"} <= graph["serving"]
    assert "churn_features" in graph["training"]


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_a_planted_function_local_import_of_serving_is_caught(
    tmp_path: Path,
) -> None:
    root = _tree(
        tmp_path,
        {
            "serving/__init__.py": "from ab_router import x\n",
            "ab_router/__init__.py": "x = 1\n",
            "ab_router/cli.py": "def f():\n    from serving.settings import s\n",
            "ab_router/rel.py": "from . import cli\n",
        },
    )
    graph = package_graph(root)
    assert forbidden_edges(graph, RULES) == [("ab_router", "serving")]
    assert cycles(graph) == [["ab_router", "serving"]]


def test_a_planted_bentoml_import_and_a_longer_cycle_are_caught(
    tmp_path: Path,
) -> None:
    root = _tree(
        tmp_path,
        {
            "ab_router/a.py": "import bentoml\nimport churn_features.schema\n",
            "churn_features/b.py": "from training.data import load\n",
            "training/c.py": "import ab_router.a as a\nimport service\n",
            "service.py": "import serving\n",
        },
    )
    graph = package_graph(root)
    assert forbidden_edges(graph, RULES) == [
        ("ab_router", "bentoml"),
        ("churn_features", "training"),
        ("training", "service"),
    ]
    assert cycles(graph) == [["ab_router", "churn_features", "training"]]
