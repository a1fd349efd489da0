"""Benchmarks: metrics, aggregation and the scripts run as ``python -m benchmarks.<name> --out DIR``."""
