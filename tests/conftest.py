"""Shared fixtures: real faces from ../shared/data/lfw128 (read-only) and the official
checkpoint fixture. Every test builds its graphs in a fresh tf.Graph."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"
# test.py's evaluation cache defaults to the user's cache folder: the suite keeps its own
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="eipnet_test_cache_")
LFW = SHARED / "data" / "lfw128"
OFFICIAL = SHARED / "fixtures" / "official_eipnet"

from tf1 import tf  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "cpu_numbers: numbers that depend on the CPU's instruction set (oneDNN, "
        "OpenCV, NumPy, OpenBLAS kernels); .ci/run reruns them under tools/avx2_caps.py")


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


def face_recognition_api():
    """face_recognition, the reference for metrics' dlib calls, imported without its side
    effect: its import turns on PIL's global LOAD_TRUNCATED_IMAGES, which would let the later
    tests' truncated files load."""
    from PIL import ImageFile
    flag = ImageFile.LOAD_TRUNCATED_IMAGES
    import face_recognition
    ImageFile.LOAD_TRUNCATED_IMAGES = flag
    return face_recognition


def copy_faces(paths, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for p in paths:
        (folder / os.path.basename(p)).write_bytes(Path(p).read_bytes())
    return folder


@pytest.fixture(scope="session")
def dataset(tmp_path_factory, train_paths, val_paths) -> Path:
    """16 real lfw128/train faces and 4 val faces in a temporary folder, for tiny runs."""
    root = tmp_path_factory.mktemp("faces")
    copy_faces(train_paths[:16], root / "train")
    copy_faces(val_paths[:4], root / "val")
    return root


def train_args(dataset: Path, checkpoint_path: Path, *extra: str) -> list[str]:
    """train.py options of a tiny run (batch 2, no FaceNet) in checkpoint_path/run."""
    return ["--train_path", str(dataset / "train"), "--test_path", str(dataset / "val"),
            "--checkpoint_path", str(checkpoint_path), "--save_path", "run", "--batchSize", "2",
            "--val_size", "4", "--print_freq", "1", "--losses", "rgb,edge,lc", *extra]


def log_steps(run: Path) -> list[int]:
    """The iterations logged in run/loss_log.txt, in order."""
    return [int(line.split()[1].rstrip(":")) for line in open(run / "loss_log.txt")
            if line.startswith("step")]


def two_step_run(model_name: str, tmp_path: Path, train_paths, val_paths, n_train: int,
                 batch: int) -> Path:
    """train.main for 2 iterations of `model_name` on a few real faces (validation on
    tmp_path/val, n_train // 2 faces); returns the run folder."""
    import train
    faces = copy_faces(train_paths[:n_train], tmp_path / "train")
    val = copy_faces(val_paths[:n_train // 2], tmp_path / "val")
    train.main(["--model", model_name, "--train_path", str(faces), "--test_path", str(val),
                "--checkpoint_path", str(tmp_path), "--save_path", "run", "--batchSize",
                str(batch), "--val_size", str(n_train // 2), "--niter", "2", "--print_freq", "1",
                "--save_freq", "2", "--val_freq", "2", "--loader_threads", "1"])
    return tmp_path / "run"


def random_generator(model_name: str, folder: Path, *args: str) -> Path:
    """A freshly initialised generator of `model_name` (test.py options `args`, e.g.
    "--scale", "4"), saved as train.py saves folder/G_weight.ckpt."""
    import checkpoints
    from networks import generators
    from options.test_options import TestOptions
    opt = TestOptions().parse(["--model", model_name, *args], verbose=False)
    with tf.Graph().as_default():
        generators.build(opt, generators.lr_placeholder(opt))
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            checkpoints.generator_saver().save(sess, str(folder / checkpoints.G_WEIGHT),
                                               write_meta_graph=False, write_state=False)
    return folder
