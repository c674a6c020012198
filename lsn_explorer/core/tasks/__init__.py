"""Benchmarks and text scoring: loaders, metrics and per-sample scoring, one module per task."""
