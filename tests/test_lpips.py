"""LPIPS (thesis Section 4.3.3) with AlexNet from an .npz weights file: the TensorFlow graph
against a numpy reimplementation of LPIPS on real faces, with a small weights file generated
here (no real weights ship: docs/evaluation.md, "LPIPS"); the file checks; test.py's LPIPS column."""
import csv

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import data
from networks import lpips_tf
import test as test_script
from conftest import copy_faces

pytestmark = pytest.mark.cpu_numbers   # reruns under tools/avx2_caps.py in .ci/run

WIDTHS = (8, 12, 10, 6, 6)   # small AlexNet: the channel counts come from the file


@pytest.fixture
def weights_file(tmp_path) -> str:
    rng = np.random.default_rng(0)
    arrays, in_ch = {}, 3
    for i, ((k, *_), out) in enumerate(zip(lpips_tf.ALEXNET, WIDTHS), start=1):
        arrays[f"conv{i}_W"] = rng.normal(0, np.sqrt(2 / (k * k * in_ch)), (k, k, in_ch, out))
        arrays[f"conv{i}_b"] = rng.normal(0, 0.1, out)
        arrays[f"lin{i}"] = rng.uniform(0, 1, out)
        in_ch = out
    path = str(tmp_path / "lpips_small.npz")
    np.savez(path, **{k: v.astype(np.float32) for k, v in arrays.items()})
    return path


def np_conv(x, kernel, bias, stride, pad):
    x = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
    k = kernel.shape[0]
    windows = sliding_window_view(x, (k, k), axis=(0, 1))[::stride, ::stride]   # H,W,C,k,k
    return np.einsum("hwcij,ijco->hwo", windows, kernel) + bias


def np_max_pool(x):
    return sliding_window_view(x, (3, 3), axis=(0, 1))[::2, ::2].max(axis=(3, 4))


def np_lpips(a, b, w) -> float:
    """LPIPS as Zhang et al.'s reference code computes it, for one pair of uint8 images."""
    feats = []
    for img in (a, b):
        x = (img / 127.5 - 1 - np.array(lpips_tf.SHIFT)) / np.array(lpips_tf.SCALE)
        layers = []
        for i, (_, stride, pad, pool) in enumerate(lpips_tf.ALEXNET, start=1):
            x = np_max_pool(x) if pool else x
            x = np.maximum(np_conv(x, w[f"conv{i}_W"], w[f"conv{i}_b"], stride, pad), 0)
            layers.append(x / (np.sqrt((x ** 2).sum(-1, keepdims=True)) + 1e-10))
        feats.append(layers)
    return sum(float(((fa - fb) ** 2 @ w[f"lin{i}"]).mean())
               for i, (fa, fb) in enumerate(zip(*feats), start=1))


def test_lpips_matches_numpy_on_real_faces(weights_file, val_faces):
    w = {k: v.astype(np.float64) for k, v in np.load(weights_file).items()}
    lpips = lpips_tf.LPIPS(weights_file)
    pairs = [(val_faces[0], val_faces[1]), (val_faces[2], val_faces[2][:, ::-1]),
             (val_faces[3], np.clip(val_faces[3].astype(int) + 20, 0, 255))]
    got = lpips(np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs]))
    want = [np_lpips(a.astype(np.float64), b.astype(np.float64), w) for a, b in pairs]
    np.testing.assert_allclose(got, want, rtol=1e-4)
    assert min(want) > 0 and lpips(val_faces[0], val_faces[0]) == 0


def test_bad_weights_files_are_named(tmp_path, weights_file):
    with pytest.raises(ValueError, match="not found"):
        lpips_tf.load_weights(str(tmp_path / "none.npz"))
    arrays = dict(np.load(weights_file))
    del arrays["lin3"]
    np.savez(tmp_path / "cut.npz", **arrays)
    with pytest.raises(ValueError, match="lin3 .* missing or misshapen"):
        lpips_tf.load_weights(str(tmp_path / "cut.npz"))


def test_test_script_scores_lpips(tmp_path, weights_file, val_paths):
    """The LPIPS column of metrics.csv is the distance of the saved SR image to HR."""
    faces = copy_faces(val_paths[:2], tmp_path / "val")
    out = tmp_path / "out"
    summary = test_script.main(["--test_path", str(faces), "--metrics", "psnr", "--no_figures",
                                "--lpips_weights", weights_file, "--result_dir", str(out)])
    lpips = summary["metrics"]["lpips"]
    assert lpips["n"] == 2 and lpips["sr"] > 0 and lpips["bicubic"] > 0
    with open(out / "metrics.csv") as f:
        row = next(csv.DictReader(f))
    stem = row["file"].rsplit(".", 1)[0]
    sr = data.read_image(str(out / f"{stem}_SR.png"))
    hr = data.read_image(str(faces / row["file"]))
    assert float(row["lpips_sr"]) == pytest.approx(lpips_tf.LPIPS(weights_file)(sr, hr), rel=1e-5)
    assert "LPIPS" in (out / "summary.md").read_text()
    with pytest.raises(SystemExit, match="--metrics lpips needs --lpips_weights"):
        test_script.main(["--test_path", str(faces), "--metrics", "psnr,lpips",
                          "--result_dir", str(tmp_path / "out2")])
