"""Measurement and maintenance scripts (benchmarks, runtimes, soak, detector and quality checks), run as `python tools/X.py` or `python -m tools.X` from the repository root."""
