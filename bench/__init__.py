"""Benchmarks (`make bench` / `python -m bench`): figures with same-run baselines, never asserted in tests."""
