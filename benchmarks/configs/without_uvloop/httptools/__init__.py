"""Hides httptools: uvicorn then uses its pure-Python default (bench baseline)."""

raise ImportError("httptools hidden by benchmarks/configs/without_uvloop")
