"""Hides uvloop: uvicorn then uses its pure-Python default (bench baseline)."""

raise ImportError("uvloop hidden by benchmarks/configs/without_uvloop")
