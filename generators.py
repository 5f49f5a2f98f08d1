"""The one place that maps --model to its generator (and the discriminator its adversarial loss
uses): train.py, test.py and the complexity figures build every generator through `build`."""
from __future__ import annotations

from typing import Callable, NamedTuple

import checkpoints
import jeanet
import model
import prior_guided
from tf1 import tf


def _eipnet_d(images, training, reuse) -> tf.Tensor:
    return model.discriminator(images, reuse)   # no batch norm: `training` changes nothing


class Generator(NamedTuple):
    title: str                                    # the method's name in tables and figures
    build: Callable[..., model.GeneratorOutput]   # (lr, opt, training, reuse)
    discriminator: Callable[..., tf.Tensor] = _eipnet_d   # (images, training, reuse) -> logits
    priors: bool = False                          # outputs coarse SR and parsing maps


def edge_flags(opt) -> list[bool]:
    return [bool(b) for b in opt.edge_blocks]


def _eipnet(lr, opt, training, reuse) -> model.GeneratorOutput:
    # no batch norm: `training` changes nothing
    return model.generator(lr, checkpoints.choose_tail(opt.tail, None), edge_flags(opt), reuse)


def _jeanet(lr, opt, training, reuse) -> model.GeneratorOutput:
    return jeanet.generator(lr, edge_flags(opt), not opt.no_adaptive_shortcuts,
                            training=training, reuse=reuse)


def _prior_guided(lr, opt, training, reuse) -> model.GeneratorOutput:
    return prior_guided.generator(lr, reuse=reuse)   # no batch norm in the generator


# the thesis's two methods share the generator; method 2 adds L_vgg and L_ad (train_options.py)
GENERATORS = {
    "eipnet": Generator("EIPNet", _eipnet),
    "jeanet": Generator("JEANet", _jeanet),
    "prior_guided": Generator("Prior-guided", _prior_guided, prior_guided.discriminator,
                              priors=True),
    "prior_guided_gan": Generator("Prior-guided GAN", _prior_guided, prior_guided.discriminator,
                                  priors=True),
}


def build(opt, lr, training=False, reuse=None) -> model.GeneratorOutput:
    """The generator of opt.model on `lr` (N,16,16,3) 0..255; `training` (bool or bool
    tensor) switches batch-norm statistics where a model has them."""
    return GENERATORS[opt.model].build(lr, opt, training, reuse)


def discriminate(opt, images, training=False, reuse=None) -> tf.Tensor:
    """The logits of opt.model's discriminator on RGB 0..255 `images`."""
    return GENERATORS[opt.model].discriminator(images, training, reuse)
