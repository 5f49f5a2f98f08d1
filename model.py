"""EIPNet graphs (paper Table 1-2, Fig. 2-3) built from raw TensorFlow ops.

Variable scopes follow the authors' released checkpoint (generator/Conv1, Step1_1, Step1_de,
Step1_edge, ..., RGB), so their G_weight.ckpt restores without renaming.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tf1 import tf

# Edge block average-pool sizes at 32, 64 and 128 px (Fig. 3).
EDGE_KERNELS = (5, 7, 10)
# Output channels of the residual block convs (Step{k}_1, Step{k}_2) and transposed convs.
STEP_WIDTHS = ((512, 512, 256), (512, 256, 128), (256, 128, 64))
# Last conv: 3x3 in the paper's Table 1, 1x1 in the authors' released graph.
TAIL_KERNEL = {"paper": 3, "released": 1}
EDGE_SCOPE = "Step{}_edge"   # edge block k's variable scope (authors' name)


# Collection of the scalar variables a generator wants logged to TensorBoard by train.py
# (JEANet's adaptive shortcut weights alpha_k, beta_k).
LOGGED_SCALARS = "logged_scalars"


class GeneratorOutput(NamedTuple):
    rgb: tf.Tensor
    edges: tuple  # edge maps at 32, 64, 128 px; None where the edge block is switched off
    # the prior-guided network's intermediate outputs, supervised by Eq 3.5 and 3.6
    coarse: tf.Tensor | None = None    # coarse SR (N,128,128,3) 0..255
    parsing: tf.Tensor | None = None   # face parsing maps (N,128,128,11) 0..1


def conv(x, out_ch: int, name: str, k: int = 3, stride: int = 1, padding: str = "SAME",
         relu: bool = True, dilation: int = 1):
    """Conv with bias; variables `<name>/w`, `<name>/b` as in the authors' layout.

    A dilated conv (stride 1) runs as space_to_batch around a plain conv (atrous_conv2d): the
    CPU kernels without oneDNN (TensorFlow's default on AVX2-only CPUs) have no gradient for
    dilation > 1, and the variables stay the same either way.
    """
    with tf.variable_scope(name):
        w = tf.get_variable("w", [k, k, x.shape[-1], out_ch], tf.float32,
                            tf.glorot_uniform_initializer())
        b = tf.get_variable("b", [out_ch], tf.float32, tf.zeros_initializer())
        if dilation > 1:
            if stride != 1:
                raise ValueError(f"{name}: a dilated conv needs stride 1, got {stride}")
            y = tf.nn.atrous_conv2d(x, w, dilation, padding)
        else:
            y = tf.nn.conv2d(x, w, [1, stride, stride, 1], padding)
        y = tf.nn.bias_add(y, b)
    return tf.nn.relu(y) if relu else y


def deconv(x, out_ch: int, name: str):
    """4x4 stride-2 SAME transposed conv + ReLU; variables named like tf.layers.conv2d_transpose."""
    with tf.variable_scope(name), tf.variable_scope("conv2d_transpose"):
        in_ch = int(x.shape[-1])
        kernel = tf.get_variable("kernel", [4, 4, out_ch, in_ch], tf.float32,
                                 tf.glorot_uniform_initializer())
        bias = tf.get_variable("bias", [out_ch], tf.float32, tf.zeros_initializer())
        n, h, w = tf.shape(x)[0], x.shape[1], x.shape[2]
        if None in x.shape.as_list()[1:3]:   # a graph for faces of any size (enhance.py's
            h, w = tf.unstack(tf.shape(x)[1:3])   # native route): the size at run time
        y = tf.nn.conv2d_transpose(x, kernel, tf.stack([n, 2 * h, 2 * w, out_ch]),
                                   [1, 2, 2, 1], "SAME")
        y = tf.reshape(tf.nn.bias_add(y, bias), [-1, 2 * h, 2 * w, out_ch])
    return tf.nn.relu(y)


def prelu(x, name: str):
    """PReLU with one learned slope per channel (initial 0.25, as He et al. 2015)."""
    with tf.variable_scope(name):
        slope = tf.get_variable("slope", [x.shape[-1]], tf.float32, tf.constant_initializer(0.25))
    return tf.nn.relu(x) - slope * tf.nn.relu(-x)


def edge_block(x, k: int, name: str, use_prelu: bool = False):
    """Fig. 3: sub = relu(x - avg_pool_k(x)); returns (edge map, concat([x, sub])).

    TensorFlow's SAME average pooling divides by the valid cells only (authors' semantics).
    use_prelu is JEANet's variant (Section III-C: "a simplex convolutional layer, a simplex
    average pooling layer and PReLU layer"; where the PReLU sits is our choice, as its Fig. 4 is
    not in the text): a PReLU (`<name>/prelu/slope`) replaces the ReLU of the high-pass
    features, so the next layers also see the dark side of an edge; the edge map keeps its
    ReLU, as the Canny targets are non-negative.
    """
    smooth = tf.nn.avg_pool2d(x, k, 1, "SAME")
    sub = prelu(x - smooth, f"{name}/prelu") if use_prelu else tf.nn.relu(x - smooth)
    edge = conv(sub, 1, name, k=1)
    return edge, tf.concat([x, sub], axis=3)


def generator(lr, tail: str = "paper", edge_blocks=(True, True, True), reuse=None,
              scale: int = 8) -> GeneratorOutput:
    """16x16 RGB (0..255) -> 128x128 RGB (0..255) and the three edge maps (Table 1).

    scale 4 (ours; the paper defines only 8x) takes 32x32 and drops Table 1's first step:
    Conv1 feeds Step2 directly, so it is as wide as Step2's residual convs, and the edge maps
    are those at 64 and 128 px (edges[0] is None). The variable names stay those of the 8x
    graph (Step2_*, Step3_*), so a checkpoint without Step1_* is a 4x one.
    """
    first = len(STEP_WIDTHS) - int(np.log2(scale))   # index of the first step that runs
    edges = [None] * first
    with tf.variable_scope("generator", reuse=reuse):
        x = conv(lr, STEP_WIDTHS[first][1], "Conv1", relu=False)
        skip = x
        for step, ((c1, c2, c_de), k, use_edge) in enumerate(
                zip(STEP_WIDTHS, EDGE_KERNELS, edge_blocks), start=1):
            if step <= first:
                continue
            y = conv(x, c1, f"Step{step}_1")
            y = conv(y, c2, f"Step{step}_2")
            skip = deconv(skip + y, c_de, f"Step{step}_de")
            if use_edge:
                edge, x = edge_block(skip, k, EDGE_SCOPE.format(step))
            else:
                edge, x = None, skip
            edges.append(edge)
        rgb = conv(x, 3, "RGB", k=TAIL_KERNEL[tail], relu=False)
    return GeneratorOutput(rgb, tuple(edges))


# The activation after di_conv4_1, the last conv of Table 2: "paper" is the caption's LeakyReLU
# 0.2 after every layer but the last fc; "authors" leaves it linear, as their networks.py.
D_VARIANTS = ("paper", "authors")


def discriminator(x, reuse=None, variant: str = "paper"):
    """Table 2: seven 3x3 convs with LeakyReLU 0.2, fc 512 with LeakyReLU 0.2, fc 1 (logits).

    `variant` decides the activation after di_conv4_1 (D_VARIANTS). Where Table 2 is silent we
    follow the authors' code: VALID padding on the stride-2 convs, raw 0..255 input.
    """
    if variant not in D_VARIANTS:
        raise ValueError(f"unknown discriminator variant {variant!r}; choose from {D_VARIANTS}")
    layers = [("di_conv1_1", 128, 1), ("di_conv1_2", 128, 2), ("di_conv2_1", 256, 1),
              ("di_conv2_2", 256, 2), ("di_conv3_1", 256, 1), ("di_conv3_2", 512, 2),
              ("di_conv4_1", 512, 1)]
    with tf.variable_scope("discriminator", reuse=reuse):
        for name, ch, stride in layers:
            x = conv(x, ch, name, stride=stride, padding="VALID" if stride == 2 else "SAME",
                     relu=False)
            if name != "di_conv4_1" or variant == "paper":
                x = tf.nn.leaky_relu(x, 0.2)
        x = tf.reshape(x, [-1, x.shape[1] * x.shape[2] * x.shape[3]])
        x = tf.nn.leaky_relu(dense(x, 512, "dense"), 0.2)
        return dense(x, 1, "dense_1")


def dense(x, units: int, name: str):
    with tf.variable_scope(name):
        w = tf.get_variable("kernel", [x.shape[-1], units], tf.float32,
                            tf.glorot_uniform_initializer())
        b = tf.get_variable("bias", [units], tf.float32, tf.zeros_initializer())
    return tf.nn.bias_add(tf.matmul(x, w), b)


def count_params(scope: str) -> int:
    return sum(int(v.shape.num_elements()) for v in tf.trainable_variables(scope))


def count_macs(outputs, scope: str = "generator") -> int:
    """Multiply-accumulates of the convolutions under `scope` for the static shapes of the
    graph that produced `outputs` (build it at batch 1 for a per-image count). The batch
    dimension of each conv counts: an atrous conv runs on rate^2 space_to_batch blocks."""
    macs = 0
    for op in outputs.graph.get_operations():
        if not op.name.startswith(scope + "/"):
            continue
        if op.type == "Conv2D":
            kh, kw, cin, cout = op.inputs[1].shape.as_list()
            n, h, w, _ = op.outputs[0].shape.as_list()
        elif op.type == "Conv2DBackpropInput":   # transposed conv: every input pixel x kernel
            kh, kw, cout, cin = op.inputs[1].shape.as_list()
            n, h, w, _ = op.inputs[2].shape.as_list()
        else:
            continue
        macs += n * h * w * kh * kw * cin * cout
    return macs
