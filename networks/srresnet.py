"""SRResNet (Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network", CVPR 2017, Fig. 4; the thesis's Section 2.3.1 and its Table 4.1 baseline)
from raw TensorFlow ops, 8x: 16x16 -> 128x128 by three PixelShuffle 2x stages.

conv 9x9 (64) + PReLU; B = 16 residual blocks (conv 3x3, BN, PReLU, conv 3x3, BN, + input);
conv 3x3 + BN + the long skip from the first conv; three stages of conv 3x3 (256), PixelShuffle
2x, PReLU (SRGAN's 4x has two); conv 9x9 to RGB. Checkpoint names: generator/{conv_in,
res1..res16/{conv1, bn1, prelu, conv2, bn2}, conv_mid, bn_mid, upscale1..upscale3, RGB}.
"""
from __future__ import annotations

import model
from networks import jeanet, prior_guided
from tf1 import tf

WIDTH = 64          # SRGAN Fig. 4: n64
N_RES_BLOCKS = 16   # SRGAN: B = 16
OUTER_KERNEL = 9    # SRGAN Fig. 4: k9 for the first and the last conv


def generator(lr, width: int = WIDTH, reuse=None, training=False) -> model.GeneratorOutput:
    """16x16 RGB (0..255) -> 128x128 RGB (0..255). choice: images enter as (x / 127.5 - 1) and
    leave as 127.5 * (y + 1) with a linear last conv, as the prior-guided generator, so the two
    differ only in their networks."""
    with tf.variable_scope("generator", reuse=reuse):
        x = model.prelu(model.conv(lr / 127.5 - 1.0, width, "conv_in", k=OUTER_KERNEL,
                                   relu=False), "prelu_in")
        y = x
        for i in range(1, N_RES_BLOCKS + 1):
            # SRGAN Fig. 4: conv, BN, PReLU, conv, BN, elementwise sum with the input
            y = prior_guided.residual_block(y, f"res{i}", training,
                                            activation=lambda z: model.prelu(z, "prelu"))
        y = x + jeanet.batch_norm(model.conv(y, width, "conv_mid", relu=False), training,
                                  "bn_mid")
        for i in range(1, prior_guided.N_UPSCALE + 1):
            y = prior_guided.upscale(y, f"upscale{i}")
        rgb = model.conv(y, 3, "RGB", k=OUTER_KERNEL, relu=False)
    return model.GeneratorOutput(127.5 * (rgb + 1.0), (None, None, None))
