"""Benchmarks: each module runs as ``python -m tests.benchmarks.<name>`` and prints a table."""
