"""Benchmarks: the FastAGI micro-benchmark, the three ways to decide a call, and `make bench`."""
