"""EIPNet loss terms (paper Section 3, Eq 3-11), JEANet's L1 pixel loss and the prior-guided
network's terms (thesis Eq 3.5-3.12). Inputs are RGB in 0..255; edge targets are Canny maps with
values 0/255, as in the authors' code; parsing maps are 0..1."""
from __future__ import annotations

import numpy as np

from tf1 import tf

# Eq 7: RGB -> YUV (BT.601 analog YUV); rows give Y, U, V.
RGB_TO_YUV = np.array([[0.299, 0.587, 0.114],
                       [-0.14713, -0.28886, 0.436],
                       [0.615, -0.51499, -0.10001]], dtype=np.float32)
TERMS = ("rgb", "edge", "lc", "id", "ad", "l1", "coarse", "parsing", "final", "vgg")
# the prior-guided network's Eq 3.8, L_content of its GAN variant (Eq 3.10)
CONTENT_TERMS = ("coarse", "parsing", "final")
PRIOR_TERMS = ("coarse", "parsing")   # need a generator with a prior branch


# How L_rgb and L_lc normalise the squared error: "paper" as Eq 8-9, summed over the 3 channels
# and averaged over the w*h pixels; "authors" averaged over the channels too, as the authors'
# code (tf.reduce_mean), 3x smaller.
LOSS_NORMS = ("paper", "authors")


def mse(a, b):
    return tf.reduce_mean(tf.square(a - b))


def pixel_error(a, b, norm: str = "paper"):
    """The squared error of Eq 8-9 with `norm` (LOSS_NORMS), averaged over the batch too."""
    if norm not in LOSS_NORMS:
        raise ValueError(f"unknown loss normalisation {norm!r}; choose from {LOSS_NORMS}")
    if norm == "authors":
        return mse(a, b)
    return tf.reduce_mean(tf.reduce_sum(tf.square(a - b), axis=-1))


def l_rgb(sr, hr, norm: str = "paper"):
    """Eq 9: squared error over RGB, per pixel (pixel_error)."""
    return pixel_error(sr, hr, norm)


def l_1(sr, hr):
    """JEANet Eq 6-8, the pixel term: mean absolute error over RGB (its edge term is l_e)."""
    return tf.reduce_mean(tf.abs(sr - hr))


def l_mse01(images, hr):
    """Eq 3.5 (coarse SR) and Eq 3.7 (final SR): MSE with both images scaled to 0..1, the scale
    of the parsing maps, so that the unweighted sum of Eq 3.8 does not drown Eq 3.6."""
    return mse(images / 255.0, hr / 255.0)


def l_parsing(maps, targets):
    """Eq 3.6: MSE between the prior branch's parsing maps and the ground-truth part maps."""
    return mse(maps, targets)


def l_vgg(features_sr, features_hr):
    """Eq 3.11: MSE between the feature maps of SR and HR; the HR side is a fixed target."""
    return mse(features_sr, tf.stop_gradient(features_hr))


def l_e(edges, targets, weights=(1.0, 1.0, 1.0)):
    """Eq 3: sum over scales (32, 64, 128) of the MSE between the edge block's map and the
    Canny edges of HR at that scale, each scale times its weight (JEANet's Eq 7: 1/r); scales
    whose edge block is switched off are skipped."""
    return tf.add_n([w * mse(e, t) for e, t, w in zip(edges, targets, weights)
                     if e is not None])


def rgb_to_yuv(x):
    return tf.tensordot(x, tf.constant(RGB_TO_YUV.T), axes=[[3], [0]])


def l_lc(sr, hr, norm: str = "paper"):
    """Eq 7-8: luminance-chrominance error, squared error in YUV per pixel (pixel_error)."""
    return pixel_error(rgb_to_yuv(sr), rgb_to_yuv(hr), norm)


def js_divergence(p, q):
    """Jensen-Shannon divergence between rows of two probability matrices (natural log)."""
    m = 0.5 * (p + q)
    kl = lambda a, b: tf.reduce_sum(a * (tf.math.log(a + 1e-12) - tf.math.log(b + 1e-12)), -1)
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def l_id(vec_sr, vec_hr, scale: float = 1.0):
    """Eq 4-6: JS divergence between softmax-normalised identity vectors of SR and HR; the HR
    side is a fixed target (no gradient)."""
    p = tf.nn.softmax(scale * vec_sr)
    q = tf.stop_gradient(tf.nn.softmax(scale * vec_hr))
    return tf.reduce_mean(js_divergence(p, q))


def l_ad_g(fake_logits):
    """Eq 10, generator side: sigmoid cross-entropy pushing D(SR) to 'real'."""
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.ones_like(fake_logits), logits=fake_logits))


def l_ad_d(real_logits, fake_logits):
    """Eq 10, discriminator side."""
    ce = tf.nn.sigmoid_cross_entropy_with_logits
    return (tf.reduce_mean(ce(labels=tf.ones_like(real_logits), logits=real_logits)) +
            tf.reduce_mean(ce(labels=tf.zeros_like(fake_logits), logits=fake_logits)))


def total(terms: dict, weights: dict):
    """Eq 11: L_rgb + gamma L_e + L_lc + alpha L_id + beta L_ad over the enabled terms
    (`terms` holds only those; JEANet's loss, Eq 6-8, is L_1 + lambda L_e; the prior-guided
    network's, Eq 3.8 and 3.10, alpha (L_coarse + L_parsing + L_final) + beta L_vgg +
    gamma L_ad); `weights` maps a term name to its weight (default 1)."""
    return tf.add_n([weights.get(name, 1.0) * value for name, value in terms.items()])
