"""No class over 200 lines, no function over 50, service.py wiring only (#8).

The size rule of the structure issue, kept as a test so a later change cannot
grow a god-object back unnoticed. The planted examples prove the checker
measures what it claims, on each side of both limits.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.code_size import oversized, production_files

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICE_LINE_LIMIT = 200


def _function(body_lines: int) -> str:
    return "def f():\n" + "    x = 1\n" * body_lines


def _class(body_lines: int) -> str:
    return "class C:\n" + "    x = 1\n" * body_lines


def test_no_production_class_or_function_is_over_its_limit() -> None:
    found = []
    for path in production_files(REPO_ROOT):
        found += oversized(path.read_text(), str(path.relative_to(REPO_ROOT)))
    assert found == []


def test_service_py_holds_wiring_only() -> None:
    lines = (REPO_ROOT / "service.py").read_text().splitlines()
    assert len(lines) <= SERVICE_LINE_LIMIT


def test_the_checker_sees_both_sides_of_the_function_limit() -> None:
    assert oversized(_function(49)) == []  # 50 lines with the def
    [found] = oversized(_function(50))
    assert (found.name, found.lines, found.limit) == ("f", 51, 50)


def test_the_checker_sees_both_sides_of_the_class_limit() -> None:
    assert oversized(_class(199)) == []
    [found] = oversized(_class(200))
    assert (found.name, found.lines, found.limit) == ("C", 201, 200)


def test_the_checker_reads_every_production_package() -> None:
    names = {p.relative_to(REPO_ROOT).parts[0] for p in production_files(REPO_ROOT)}
    assert names == {"service.py", "serving", "ab_router"}
