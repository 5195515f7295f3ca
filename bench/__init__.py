"""Benchmarks (``make bench``): side-by-side ratios, medians over repeated runs. Not tests: nothing here asserts."""
