"""Hides uvloop so uvicorn falls back to its pure-Python default (benchmark baseline)."""

raise ImportError("uvloop hidden by benchmarks/configs/without_uvloop")
