"""Measured proposals for code outside ``benchmarks/`` (the lead moves what pays)."""
