"""Classes and functions longer than the structure issue (#8) allows."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

CLASS_LIMIT = 200
FUNCTION_LIMIT = 50


@dataclass(frozen=True)
class Oversized:
    path: str
    line: int
    name: str
    lines: int
    limit: int


def oversized(source: str, path: str = "<source>") -> list[Oversized]:
    """Every class over CLASS_LIMIT and function over FUNCTION_LIMIT lines."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            limit = CLASS_LIMIT
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            limit = FUNCTION_LIMIT
        else:
            continue
        lines = (node.end_lineno or node.lineno) - node.lineno + 1
        if lines > limit:
            found.append(Oversized(path, node.lineno, node.name, lines, limit))
    return found


def production_files(root: Path) -> list[Path]:
    """service.py and every module of serving/ and ab_router/."""
    return [
        root / "service.py",
        *sorted((root / "serving").rglob("*.py")),
        *sorted((root / "ab_router").rglob("*.py")),
    ]
