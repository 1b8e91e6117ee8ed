"""Boomerang benchmarks (`make bench`). Nothing is imported here: the cold-start baseline lives in this package."""
