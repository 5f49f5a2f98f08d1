"""Shared fixtures: real faces from ../shared/data/lfw128 (read-only) and the official
checkpoint fixture. Every test builds its graphs in a fresh tf.Graph."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"
LFW = SHARED / "data" / "lfw128"
OFFICIAL = SHARED / "fixtures" / "official_eipnet"

from tf1 import tf  # noqa: E402


def identity_of(path) -> str:
    return os.path.basename(str(path)).rsplit("_", 1)[0]


@pytest.fixture
def graph():
    """A fresh default graph for the test."""
    with tf.Graph().as_default() as g:
        yield g


@pytest.fixture(scope="session")
def val_paths() -> list[str]:
    return sorted(str(p) for p in (LFW / "val").glob("*.jpg"))


@pytest.fixture(scope="session")
def train_paths() -> list[str]:
    return sorted(str(p) for p in (LFW / "train").glob("*.jpg"))


@pytest.fixture(scope="session")
def val_faces(val_paths) -> np.ndarray:
    """Eight real val faces, RGB uint8 (8,128,128,3)."""
    import data
    return np.stack([data.read_image(p) for p in val_paths[:8]])


def copy_faces(paths, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for p in paths:
        (folder / os.path.basename(p)).write_bytes(Path(p).read_bytes())
    return folder
