"""Benchmark suites behind ``python -m matkron bench``."""
