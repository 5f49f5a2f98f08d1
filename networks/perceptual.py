"""Feature networks for L_vgg of the prior-guided GAN (thesis Eq 3.11): VGG19 from a weights file
the user supplies, or, offline, the FaceNet graph the project already ships.

VGG19 weights file (train.py --vgg19_weights): a NumPy .npz holding, for each of the 16 convs
conv1_1..conv5_4, the kernel `<conv>_W` (3,3,in,out; HWIO as TensorFlow's conv2d, input
channels in RGB order; Caffe-converted weights are BGR: reverse conv1_1_W's third axis) and the
bias `<conv>_b` (out,). Inputs are RGB 0..255 minus the ImageNet mean. The loss compares the
conv5_4 features after ReLU (SRGAN's VGG54). Weights become graph constants: never trained,
never saved in our checkpoints.
"""
from __future__ import annotations

import os
from typing import Callable, Mapping

import numpy as np

from networks.identity import IdentityNet
from tf1 import tf

VGG19_CONVS = (2, 2, 4, 4, 4)   # convs per block; 2x2 max pool between blocks
IMAGENET_MEAN = (123.68, 116.779, 103.939)
FACENET_FEATURES = "block35"
STAND_IN = f"FaceNet {FACENET_FEATURES} feature maps, the offline stand-in for VGG19"

Features = Callable[..., tf.Tensor]   # (images 0..255, name) -> feature maps


def vgg19_names() -> list[str]:
    return [f"conv{b}_{i}" for b, n in enumerate(VGG19_CONVS, start=1) for i in range(1, n + 1)]


def load_vgg19(path: str) -> dict[str, np.ndarray]:
    """The kernels and biases of a VGG19 .npz (module docstring), checked."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"VGG19 weights not found: {path!r} (--vgg19_weights)")
    with np.load(path) as f:
        weights = {k: f[k].astype(np.float32) for k in f.files}
    in_ch = 3
    for name in vgg19_names():
        kernel, bias = weights.get(name + "_W"), weights.get(name + "_b")
        if kernel is None or bias is None or kernel.shape[:3] != (3, 3, in_ch) \
                or bias.shape != kernel.shape[3:]:
            raise ValueError(f"{path!r}: {name}_W (3,3,{in_ch},out) and {name}_b (out,) missing "
                             f"or misshapen; see networks/perceptual.py for the expected layout")
        in_ch = kernel.shape[3]
    return weights


def vgg19_conv54(images, weights: Mapping[str, tf.Tensor]):
    """VGG19's conv5_4 features after ReLU of RGB 0..255 `images`."""
    x = images - tf.constant(IMAGENET_MEAN, tf.float32)
    for block, n in enumerate(VGG19_CONVS, start=1):
        if block > 1:
            x = tf.nn.max_pool2d(x, 2, 2, "VALID")
        for i in range(1, n + 1):
            name = f"conv{block}_{i}"
            x = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, weights[name + "_W"], 1, "SAME"),
                                          weights[name + "_b"]))
    return x


def feature_network(vgg19_weights: str | None, facenet_graph: str | None = None) -> Features:
    """VGG19 conv5_4 when a weights file is given, else FaceNet's block35 feature maps; says
    which in the log."""
    if vgg19_weights:
        with tf.name_scope("vgg19_weights"):   # one copy of the constants for every call
            consts = {k: tf.constant(v) for k, v in load_vgg19(vgg19_weights).items()}
        print(f"L_vgg: VGG19 conv5_4 features from {vgg19_weights}")

        def vgg19(images, name: str = "vgg19"):
            with tf.name_scope(name):
                return vgg19_conv54(images, consts)
        return vgg19
    print(f"L_vgg: no --vgg19_weights given, so the perceptual features are {STAND_IN}")
    return IdentityNet(facenet_graph, FACENET_FEATURES)
