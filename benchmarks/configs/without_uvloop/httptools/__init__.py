"""Hides httptools so uvicorn falls back to its pure-Python default (benchmark baseline)."""

raise ImportError("httptools hidden by benchmarks/configs/without_uvloop")
