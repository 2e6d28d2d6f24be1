"""Benchmarks; run them as scripts (see README.md here), never under pytest."""
