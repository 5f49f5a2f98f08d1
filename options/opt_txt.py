"""Reading back a run's opt.txt (BaseOptions.save writes it), with no TensorFlow import."""
from __future__ import annotations

import os


def read(folder: str) -> dict[str, str]:
    """{option: value} as the run's opt.txt prints them (BaseOptions.format)."""
    found = {}
    with open(os.path.join(folder, "opt.txt")) as lines:
        for line in lines:
            name, sep, value = line.partition(":")
            if sep and not line.startswith("-"):
                found[name.strip()] = value.split("\t")[0].strip()
    return found
