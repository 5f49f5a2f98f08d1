"""JEANet generator (Gao, Tang, Wu, Chang, Lu, Yu, "Joint Edge Information and Attention
Aggregation Network for Face Super-Resolution", T-ITS manuscript T-ITS-22-03-0713, Section III,
Eq 1-5) from raw TensorFlow ops.

The manuscript gives the layout (first conv, 16 FAAMs, three edge blocks, adaptive shortcuts,
last conv) and the FAAM's parts, but no widths and few layer details; its Fig. 2-4 are not in
the text we have. Where the text decides, the comment cites it; the rest is marked "choice:".
Checkpoint names read like the paper: generator/Conv1, FAAM1..FAAM16 (feature, feature_bn,
feature2, feature2_bn, hourglass, channel, spatial, fuse, skip), Edge1..Edge3, alpha_1..3,
beta_1..3, RGB.
"""
from __future__ import annotations

from typing import Mapping

import model
from tf1 import tf

HR_SIZE = 128
# choice: channels per feature-map size, SPARNet-like (32 at 128 px up to 128 at 16-32 px).
WIDTHS = {128: 32, 64: 64, 32: 128, 16: 128}
N_DOWN, N_BODY, N_UP = 3, 10, 3   # FAAMs 1-3, 4-13, 14-16 (Section III-A)
FEATURE_CONVS = 2                 # choice: the text's "convolutional layers" give no count
BN_MOMENTUM = 0.9                 # choice: moving averages settle within a short CPU run
BN_EPSILON = 1e-5                 # choice
CA_REDUCTION = 16                 # choice: CBAM's own, as the text takes CBAM's channel branch
SA_KERNEL = 3                     # choice: the spatial branch's conv on the hourglass features
HOURGLASS_DEPTH = 2               # choice: two halvings (16 -> 8 -> 4 px in the body)
SHORTCUT_INIT = 0.5               # choice: alpha_k = beta_k at the start (their mean)
EDGE_SCOPE = "Edge{}"             # edge block k's variable scope
# r of Eq 7 for the edge maps at 32, 64 and 128 px, whose loss is weighted by 1/r. The text
# sets r to 1, 2 and 4 without saying which map gets which; choice: r is the downscaling from
# the 128 px output, so the full-size edges count most (docs/jeanet.md, "Edge loss per scale").
EDGE_R = (4, 2, 1)


def batch_norm(x, training, name: str):
    """Batch norm from raw ops: batch moments while `training`, moving averages otherwise.

    The moving-average updates go to tf.GraphKeys.UPDATE_OPS (train.py runs them with every
    generator step); they are no-ops when `training` is False. The moving averages are in
    MOVING_AVERAGE_VARIABLES so checkpoints.generator_saver keeps them.
    """
    ch = x.shape[-1]
    # under tf.distribute (train.py --strategy) the replicas' updates are averaged, so every
    # replica keeps the same moving averages
    stats = dict(trainable=False, aggregation=tf.VariableAggregation.MEAN,
                 collections=[tf.GraphKeys.GLOBAL_VARIABLES, tf.GraphKeys.MOVING_AVERAGE_VARIABLES])
    with tf.variable_scope(name):
        gamma = tf.get_variable("gamma", [ch], tf.float32, tf.ones_initializer())
        beta = tf.get_variable("beta", [ch], tf.float32, tf.zeros_initializer())
        moving_mean = tf.get_variable("moving_mean", [ch], tf.float32, tf.zeros_initializer(),
                                      **stats)
        moving_var = tf.get_variable("moving_variance", [ch], tf.float32, tf.ones_initializer(),
                                     **stats)
        training = tf.convert_to_tensor(training, tf.bool)
        mean, var = tf.nn.moments(x, [0, 1, 2])
        rate = (1.0 - BN_MOMENTUM) * tf.cast(training, tf.float32)
        for moving, batch in ((moving_mean, mean), (moving_var, var)):
            tf.add_to_collection(tf.GraphKeys.UPDATE_OPS,
                                 tf.assign_sub(moving, (moving - batch) * rate))
        mean, var = tf.cond(training, lambda: (mean, var),
                            lambda: (tf.identity(moving_mean), tf.identity(moving_var)))
    return tf.nn.batch_normalization(x, mean, var, beta, gamma, BN_EPSILON)


def upsample2(x):
    """Nearest-neighbour 2x (the paper's upscaling)."""
    return tf.image.resize(x, [2 * int(x.shape[1]), 2 * int(x.shape[2])], "nearest")


def conv_prelu(x, out_ch: int, name: str, stride: int = 1):
    return model.prelu(model.conv(x, out_ch, name, stride=stride, relu=False), f"{name}/prelu")


def feature_branch(x, out_ch: int, scale: str, training):
    """F_feat (Eq 1): "convolutional layers, batch normalization and PReLU"; downscaling by
    "changing the step size of the convolutional layer to 2" (the first conv), upscaling by "a
    nearest-neighbour upsampling layer" first (Section III-B). choice: FEATURE_CONVS units of
    conv + batch norm + PReLU, named feature, feature2, ..."""
    if scale == "up":
        x = upsample2(x)
    for i in range(FEATURE_CONVS):
        name = "feature" if i == 0 else f"feature{i + 1}"
        x = model.conv(x, out_ch, name, stride=2 if scale == "down" and i == 0 else 1,
                       relu=False)
        x = model.prelu(batch_norm(x, training, f"{name}_bn"), f"{name}/prelu")
    return x


def hourglass(x, width: int, depth: int = HOURGLASS_DEPTH):
    """Encoder-decoder before the attention branches. choice: a 1x1 conv to `width` channels,
    `depth` stride-2 conv + PReLU halvings, a bottom conv, and nearest 2x + conv + PReLU back up
    with an additive skip at every size."""
    with tf.variable_scope("hourglass"):
        x = conv_prelu(x, width, "in")
        skips = []
        for level in range(depth):
            skips.append(x)
            x = conv_prelu(x, width, f"down{level}", stride=2)
        x = conv_prelu(x, width, "bottom")
        for level in reversed(range(depth)):
            x = skips[level] + conv_prelu(upsample2(x), width, f"up{level}")
    return x


def channel_attention(h, out_ch: int):
    """mu (N,1,1,C), Eq 2: CBAM's shared MLP on the average- and max-pooled descriptors, summed,
    sigmoid; the text takes this branch from Woo et al. [24] ("both max-pooled and
    average-pooled features"). The two descriptors sit side by side as a 1x2 map, so the MLP is
    two 1x1 convs."""
    with tf.variable_scope("channel"):
        pooled = tf.concat([tf.reduce_mean(h, [1, 2], keepdims=True),
                            tf.reduce_max(h, [1, 2], keepdims=True)], axis=2)
        z = model.conv(pooled, max(out_ch // CA_REDUCTION, 1), "mlp1", k=1)
        z = model.conv(z, out_ch, "mlp2", k=1, relu=False)
    return tf.sigmoid(tf.reduce_sum(z, axis=2, keepdims=True), name="mu")


def spatial_attention(h):
    """nu (N,H,W,1), Eq 3: a conv from every channel of the hourglass's multi-scale features to
    one map, sigmoid. Not CBAM's spatial branch: the text says CBAM's pooling "may lead to the
    loss of useful low- and middle-level information" and that its own spatial attention is
    made "to take full advantage of the multi-scale features" of the hourglass it puts before
    the attention branches (Sections II-B, III-B). choice: one SA_KERNEL conv, one channel."""
    return tf.sigmoid(model.conv(h, 1, "spatial", k=SA_KERNEL, relu=False), name="nu")


def resample_skip(x, out_ch: int, scale: str):
    """x_{j-1} at x_j's size and width. choice: 2x2 average pool down, nearest 2x up, and a
    1x1 conv only where the width changes."""
    if scale == "down":
        x = tf.nn.avg_pool2d(x, 2, 2, "VALID")
    elif scale == "up":
        x = upsample2(x)
    return x if int(x.shape[-1]) == out_ch else model.conv(x, out_ch, "skip", k=1, relu=False)


def faam(x, out_ch: int, name: str, scale: str, training):
    """Face Attention Aggregation Module (Eq 1-5), scale 'down', 'same' or 'up':
    f = F_feat(x); h = hourglass(f) ("before the attention branches"); mu = channel(h),
    nu = spatial(h) in parallel; x_j = skip(x_{j-1}) + Conv1x1(concat(f * mu, f * nu)). The
    attention maps are the tensors `<name>/mu` (N,1,1,C) and `<name>/nu` (N,H,W,1), the
    hourglass output `<name>/hourglass_out`."""
    with tf.variable_scope(name):
        f = feature_branch(x, out_ch, scale, training)
        h = tf.identity(hourglass(f, out_ch // 2), "hourglass_out")   # choice: half width
        mu, nu = channel_attention(h, out_ch), spatial_attention(h)
        fused = model.conv(tf.concat([f * mu, f * nu], axis=3), out_ch, "fuse", k=1, relu=False)
        return resample_skip(x, out_ch, scale) + fused


def adaptive_shortcut(shallow, deep, k: int):
    """alpha_k * (downscaling-part features) + beta_k * (upscaling-part features) at one size:
    Section III-A's trainable "multiplicative factors (i.e., alpha_k, beta_k, k in {1, 2, 3})"
    that carry shallow features to the upscaling part. choice (Fig. 2 is not in the text): the
    shallow features are the downscaling part's at the same size. Both scalars are collected in
    model.LOGGED_SCALARS for TensorBoard."""
    weights = []
    for name in (f"alpha_{k}", f"beta_{k}"):
        w = tf.get_variable(name, [], tf.float32, tf.constant_initializer(SHORTCUT_INIT))
        tf.add_to_collection(model.LOGGED_SCALARS, w)
        weights.append(w)
    return weights[0] * shallow + weights[1] * deep


def generator(lr, edge_blocks=(True, True, True), adaptive_shortcuts: bool = True,
              widths: Mapping[int, int] = WIDTHS, training=False,
              reuse=None) -> model.GeneratorOutput:
    """16x16 RGB (0..255) -> 128x128 RGB (0..255) and the edge maps of the edge blocks after
    FAAM 14, 15 and 16: edges[0] at 32 px, edges[1] at 64 px, edges[2] at 128 px (None where
    switched off). `training` (bool or bool tensor) selects batch or moving batch-norm
    statistics.

    Section III-A: I_LR-UP (bicubic to 128) -> Conv1 -> FAAM 1-3 (downscale 128 -> 64 -> 32 ->
    16) -> FAAM 4-13 (16 px) -> FAAM 14-16 (upscale 16 -> 32 -> 64 -> 128), each followed by
    the adaptive shortcut with the downscaling part's features at that size (Conv1, FAAM1,
    FAAM2 outputs) and then an edge block (Section III-C: EIPNet's with a PReLU,
    model.edge_block) -> RGB conv. choice: 3x3 first and last convs; the shortcut before the
    edge block; EIPNet's pool sizes (5, 7, 10); images enter as (x / 127.5 - 1) and leave as
    127.5 * (RGB + 1), edge maps as 255 x the edge block's map (the project's 0..255
    convention); no global residual.
    """
    edges, size = [], HR_SIZE
    with tf.variable_scope("generator", reuse=reuse):
        up = tf.image.resize_bicubic(lr, [HR_SIZE, HR_SIZE], half_pixel_centers=True)
        x = model.conv(up / 127.5 - 1.0, widths[size], "Conv1", relu=False)
        shallow = {size: x}
        for j in range(1, N_DOWN + 1):
            size //= 2
            x = faam(x, widths[size], f"FAAM{j}", "down", training)
            shallow[size] = x
        for j in range(N_DOWN + 1, N_DOWN + N_BODY + 1):
            x = faam(x, widths[size], f"FAAM{j}", "same", training)
        for k in range(1, N_UP + 1):
            size *= 2
            x = faam(x, widths[size], f"FAAM{N_DOWN + N_BODY + k}", "up", training)
            if adaptive_shortcuts:
                x = adaptive_shortcut(shallow[size], x, k)
            edge = None
            if edge_blocks[k - 1]:
                edge, x = model.edge_block(x, model.EDGE_KERNELS[k - 1], EDGE_SCOPE.format(k),
                                           use_prelu=True)
                edge = 255.0 * edge   # features are ~unit scale; Canny targets are 0/255
            edges.append(edge)
        rgb = 127.5 * (model.conv(x, 3, "RGB", relu=False) + 1.0)
    return model.GeneratorOutput(rgb, tuple(edges))
