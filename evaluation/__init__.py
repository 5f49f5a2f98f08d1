"""Evaluation of the paper's Section 4.3: the metrics, and test.py's per-face scoring pool, CSV log and cache."""
