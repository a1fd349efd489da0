"""Benchmark scripts, run as ``python -m benchmarks.<name> --out DIR``, and their kept results
(``benchmarks/results/``). Nothing in the library imports this package."""

import camera  # noqa: F401  (its root makes torchvision importable)
