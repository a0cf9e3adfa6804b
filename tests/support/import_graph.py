"""The repository's package-level import graph, parsed with ``ast``.

Every ``import`` and ``from ... import`` counts, function-local ones too (a
lazy import is still a dependency), but only absolute ones: a relative import
stays inside its own package. Edges are between top-level names (``serving``,
``ab_router``, ``service``, ...); imports of other distributions are kept only
when named in ``external`` (``bentoml``), so rules can forbid them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

#: Top-level names that are never part of the graph's nodes.
_SKIP_DIRS = {".venv", ".git", "node_modules", "__pycache__"}


def python_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*.py")
        if not _SKIP_DIRS.intersection(p.relative_to(root).parts)
    )


def top_level(root: Path, path: Path) -> str:
    """``serving/entry.py`` -> ``serving``; ``service.py`` -> ``service``."""
    first = path.relative_to(root).parts[0]
    return first.removesuffix(".py")


def imported_names(path: Path) -> set[str]:
    """Top-level names of every absolute import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def package_graph(
    root: Path, *, external: Iterable[str] = ("bentoml",)
) -> dict[str, set[str]]:
    """``{package: packages it imports}`` over ``root``'s ``.py`` files, with
    the ``external`` distributions as extra nodes; self-imports left out."""
    files = python_files(root)
    local = {top_level(root, p) for p in files}
    known = local | set(external)
    graph: dict[str, set[str]] = {name: set() for name in local}
    for path in files:
        package = top_level(root, path)
        graph[package] |= (imported_names(path) & known) - {package}
    return graph


def forbidden_edges(
    graph: Mapping[str, set[str]], rules: Mapping[str, Iterable[str]]
) -> list[tuple[str, str]]:
    """``(importer, imported)`` pairs that ``rules`` (``{package: names it
    must not import}``) forbid."""
    return sorted(
        (package, target)
        for package, banned in rules.items()
        for target in graph.get(package, set()) & set(banned)
    )


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one package (each a
    set of packages that import one another, directly or not), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm; the graph has ~10 nodes
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, set())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)
