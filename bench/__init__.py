"""Benchmarks (`make bench`): what a request costs in billed compute, cloud calls, cold start
and throughput, each against its baseline; see docs/benchmarks.md."""
