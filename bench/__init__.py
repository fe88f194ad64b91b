"""Benchmarks: one module per question, each printing numbers and writing bench/results/<name>.json.

Run one with `python -m bench.<name> [--quick]`, all with `make bench` (or `python -m bench`);
`python -m bench.report` regenerates docs/benchmarks.md from the result files.
"""
