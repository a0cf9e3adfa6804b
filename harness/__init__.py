"""Development harness shared by ``tests/`` and ``benchmarks/``; never shipped."""
