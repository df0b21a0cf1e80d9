"""Benchmarks of Hirondelle; see bench/README.md."""
