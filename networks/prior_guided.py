"""The prior-guided attention network of the thesis "A Prior-Guided Face Image Super-Resolution
Network Based on Attention Mechanism" (Waseda, 2023) from raw TensorFlow ops: the generator of
method 1 (Section 3.1, also method 2's) and the SRGAN discriminator of method 2 (Table 3.4).

SR branch (Table 3.1) on the LR face -> coarse SR at 128 px; prior branch (Fig. 3.5-3.7), an
independent branch on the LR face (Summary, "two independent branches") -> 11 face parsing maps
(parsing.CLASSES); fusing module (Table 3.3) on both -> final SR. Details the thesis leaves open
are marked "choice:"; deviations from its equations are options that default off (Design).
Checkpoint names: generator/sr_branch/{conv_in, block1..block16, conv_mid, upscale1..upscale3,
coarse}, generator/prior_branch/{conv_in, res1..res3, hourglass, upscale, parsing},
generator/fusing/{conv_in, res}, generator/RGB, generator/design (the Design as text);
discriminator/{conv1..conv8, bn2..bn8, dense1, dense2}.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

import checkpoints
import data
import model
from networks import jeanet
from photos import parsing
from tf1 import tf

WIDTH = 64                # Table 3.1
N_BASIC_BLOCKS = 16       # Table 3.1
N_UPSCALE = 3             # PixelShuffle 2x stages: 16 -> 128 px
SE_REDUCTION = 16         # choice: SENet's reduction in the excitation's first dense layer
PRIOR_RES_BLOCKS = 3      # choice: FSRNet's prior estimation network has three
HOURGLASS_DEPTH = 3       # choice: 64 -> 8 px and back
LEAK = 0.2                # SRGAN's LeakyReLU slope
# Table 3.4 after its first conv: (width / WIDTH, stride) of the seven conv + BN blocks
D_BLOCKS = ((1, 2), (2, 1), (2, 2), (4, 1), (4, 2), (8, 1), (8, 2))
D_DENSE = 1024


class Design(NamedTuple):
    """The generator's switchable choices; the defaults follow the thesis."""
    prior_input: str = "lr"     # "lr": independent branches (Summary); "coarse": FSRNet's chain
    se_relu: bool = False       # deviation: ReLU between Eq 3.3's two dense layers (SENet's)
    block_skip: bool = False    # deviation: F_in + Eq 3.4's F_out (a residual basic block)
    res_bn: bool = True         # SRResNet's residual block (Section 2.3.1): conv-BN-ReLU-conv-BN
    l_vgg: str = "none"         # provenance, not architecture: L_vgg's features in training

    def text(self) -> str:
        return ";".join(f"{k}={v}" for k, v in self._asdict().items())

    @classmethod
    def parse(cls, text: str) -> Design:
        fields = dict(item.split("=", 1) for item in text.split(";"))
        types = {k: type(v) for k, v in cls()._asdict().items()}
        return cls(**{k: (v == "True") if types[k] is bool else v
                      for k, v in fields.items() if k in types})


def design_variable(design: Design) -> tf.Variable:
    """generator/design: the Design as a string, saved with the generator's weights so that
    test.py rebuilds the graph it was trained with (and says which L_vgg features it used)."""
    return tf.Variable(design.text(), trainable=False, name="design",
                       collections=[tf.GraphKeys.GLOBAL_VARIABLES, checkpoints.DESIGN])


def excitation(f, se_relu: bool = False):
    """Eq 3.2-3.3: squeeze (global average pool) and excitation s(f_C2(f_C1(z))), two dense
    layers and a softmax over the channels -> channel weights (N,1,1,C). Eq 3.3 has no
    activation between the dense layers; `se_relu` puts SENet's ReLU there (deviation)."""
    ch = int(f.shape[-1])
    z = model.dense(tf.reduce_mean(f, [1, 2]), max(ch // SE_REDUCTION, 1), "excite1")
    if se_relu:
        z = tf.nn.relu(z)
    return tf.reshape(tf.nn.softmax(model.dense(z, ch, "excite2")), [-1, 1, 1, ch],
                      name="excitation")


def basic_block(x, name: str, design: Design):
    """Fig. 3.3, Eq 3.1-3.4: F' = F_3x3(x) + F_5x5(x) (Eq 3.1), the 5x5 field a dilated 3x3
    conv; F_out = conv(ReLU(F' * F_scale)) (Eq 3.4). `design.block_skip` adds the input, as a
    residual block would (deviation: Eq 3.4 has no "+ F_in")."""
    ch = int(x.shape[-1])
    with tf.variable_scope(name):
        f = (model.conv(x, ch, "conv3x3", relu=False) +
             model.conv(x, ch, "conv5x5", relu=False, dilation=2))
        y = model.conv(tf.nn.relu(f * excitation(f, design.se_relu)), ch, "conv", relu=False)
        return x + y if design.block_skip else y


def residual_block(x, name: str, training=False, bn: bool = True, activation=tf.nn.relu):
    """SRResNet's residual block (thesis Section 2.3.1: two convs, two BN layers, an activation
    and a skip): conv, BN, activation, conv, BN, plus the input. choice: ReLU, the thesis's word
    "activation" (SRResNet's is PReLU: srresnet.py passes it, built in the block's scope). `bn`
    False drops the BN layers (the design before the thesis was read)."""
    ch = int(x.shape[-1])
    norm = ((lambda y, n: jeanet.batch_norm(y, training, n)) if bn else (lambda y, n: y))
    with tf.variable_scope(name):
        y = activation(norm(model.conv(x, ch, "conv1", relu=False), "bn1"))
        return x + norm(model.conv(y, ch, "conv2", relu=False), "bn2")


def upscale(x, name: str):
    """PixelShuffle 2x: conv to 4C, depth_to_space, PReLU (SRResNet's)."""
    with tf.variable_scope(name):
        y = tf.nn.depth_to_space(model.conv(x, 4 * int(x.shape[-1]), "conv", relu=False), 2)
        return model.prelu(y, "prelu")


def sr_branch(lr, width: int, design: Design):
    """Table 3.1: conv 3 -> width at 16 px, 16 basic blocks, conv, three PixelShuffle stages,
    conv to the coarse SR image (-1..1). choice: SRResNet's long skip around the blocks."""
    with tf.variable_scope("sr_branch"):
        x = model.conv(lr, width, "conv_in", relu=False)
        y = x
        for i in range(1, N_BASIC_BLOCKS + 1):
            y = basic_block(y, f"block{i}", design)
        y = x + model.conv(y, width, "conv_mid", relu=False)
        for i in range(1, N_UPSCALE + 1):
            y = upscale(y, f"upscale{i}")
        return model.conv(y, 3, "coarse", relu=False)


def prior_branch(face, width: int, training=False, bn: bool = True):
    """Fig. 3.5-3.7: residual blocks (Fig. 3.6) and an hourglass (Fig. 3.7) -> 11 parsing maps
    at 128 px from a 128 px face (-1..1). choice (after FSRNet's prior estimation network; the
    text of Section 3.1.1.2 is lost): a stride-2 conv to 64 px, three residual blocks, jeanet's
    hourglass (64 -> 8 px and back), a PixelShuffle stage back to 128 px and a linear 1x1 conv to
    the maps, which Eq 3.6 regresses."""
    with tf.variable_scope("prior_branch"):
        x = model.conv(face, width, "conv_in", stride=2)
        for i in range(1, PRIOR_RES_BLOCKS + 1):
            x = residual_block(x, f"res{i}", training, bn)
        x = upscale(jeanet.hourglass(x, width, HOURGLASS_DEPTH), "upscale")
        return model.conv(x, parsing.N_PARTS, "parsing", k=1, relu=False)


def fusing_module(coarse, maps, width: int, training=False, bn: bool = True):
    """Table 3.3: concat(coarse SR, parsing maps) -> conv -> residual block -> conv to RGB.
    The last conv is generator/RGB, the name of EIPNet's and JEANet's last conv (test.py reads
    its kernel size)."""
    with tf.variable_scope("fusing"):
        x = model.conv(tf.concat([coarse, maps], axis=3), width, "conv_in")
        x = residual_block(x, "res", training, bn)
    return model.conv(x, 3, "RGB", relu=False)


def upscale_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of TF1's bicubic resize (tf.compat.v1.image.resize: Keys a = -0.75,
    source x = i * n_in / n_out, edges clamped): as two MatMuls it exports to ONNX and OpenVINO
    unchanged, where their Resize ops interpolate differently."""
    m = np.zeros((n_out, n_in), np.float32)
    for i in range(n_out):
        x = i * n_in / n_out
        j = int(np.floor(x))
        for k in range(-1, 3):
            m[i, min(max(j + k, 0), n_in - 1)] += data.cubic(np.array(k - (x - j)), -0.75)
    return m


def prior_input(lr, coarse, design: Design):
    """What the prior branch sees (-1..1, 128 px). "lr": the LR face, bicubically upscaled to
    the branch's 128 px (choice: the text gives the branch LR input, not how it reaches 128 px),
    so L_parsing's gradient stays in the prior branch. "coarse": FSRNet's chain, the coarse SR."""
    if design.prior_input == "coarse":
        return coarse
    if design.prior_input != "lr":
        raise ValueError(f"prior_input {design.prior_input!r}: choose lr or coarse")
    m = tf.constant(upscale_matrix(int(lr.shape[1]), 2 ** N_UPSCALE * int(lr.shape[1])))
    rows = tf.matmul(m, tf.transpose(lr, [0, 3, 1, 2]))   # (N,3,128,16)
    return tf.transpose(tf.matmul(rows, m, transpose_b=True), [0, 2, 3, 1])


def generator(lr, width: int = WIDTH, reuse=None, training=False,
              design: Design = Design()) -> model.GeneratorOutput:
    """16x16 RGB (0..255) -> final SR and coarse SR (128x128, 0..255) and the parsing maps
    (N,128,128,11). choice: images enter as (x / 127.5 - 1) and leave as 127.5 * (y + 1), as
    JEANet's; the prior branch and the fusing module see faces on the -1..1 scale. `training`
    selects batch or moving batch-norm statistics."""
    with tf.variable_scope("generator", reuse=reuse):
        if not reuse:
            design_variable(design)
        lr1 = lr / 127.5 - 1.0
        coarse = sr_branch(lr1, width, design)
        maps = prior_branch(prior_input(lr1, coarse, design), width, training, design.res_bn)
        rgb = fusing_module(coarse, maps, width, training, design.res_bn)
    return model.GeneratorOutput(127.5 * (rgb + 1.0), (None, None, None),
                                 127.5 * (coarse + 1.0), maps)


def discriminator(images, training=False, reuse=None, width: int = WIDTH):
    """Table 3.4 (SRGAN's): conv + LeakyReLU; seven conv + batch norm + LeakyReLU blocks (3x3,
    64-512 channels, strides 2,1,2,1,2,1,2); dense 1024 + LeakyReLU; dense 1. Returns the
    logit: the sigmoid is inside the cross-entropy of losses.l_ad_g / l_ad_d. `training`
    selects batch or moving batch-norm statistics (jeanet.batch_norm)."""
    with tf.variable_scope("discriminator", reuse=reuse):
        x = tf.nn.leaky_relu(model.conv(images / 127.5 - 1.0, width, "conv1", relu=False), LEAK)
        for i, (mult, stride) in enumerate(D_BLOCKS, start=2):
            x = model.conv(x, mult * width, f"conv{i}", stride=stride, relu=False)
            x = tf.nn.leaky_relu(jeanet.batch_norm(x, training, f"bn{i}"), LEAK)
        x = tf.reshape(x, [-1, x.shape[1] * x.shape[2] * x.shape[3]])
        x = tf.nn.leaky_relu(model.dense(x, D_DENSE, "dense1"), LEAK)
        return model.dense(x, 1, "dense2")


def design_of(prefix: str) -> Design | None:
    """The prior-guided Design saved in the checkpoint at `prefix`; None if it has none."""
    name = f"generator/{checkpoints.DESIGN}"
    if name not in checkpoints.variable_shapes(prefix):
        return None
    return Design.parse(tf.train.load_variable(prefix, name).decode())
