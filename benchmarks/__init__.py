"""Benchmarks: `python -m benchmarks.<name>`; see README, "Benchmarks"."""
