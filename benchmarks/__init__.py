"""Benchmarks, load tests and tuning evidence for churn-ab (see docs/performance.md)."""
