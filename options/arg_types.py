"""argparse types of the scripts' options; free of TensorFlow, so the tools that only read runs
(tools/learning_curve.py) start at once."""
from __future__ import annotations

import argparse


def int_list(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: pass 1 or more")
    return value


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative: pass 0 or more")
    return value


def str_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]
