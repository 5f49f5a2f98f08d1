"""The one place that maps --model to its generator (and the discriminator its adversarial loss
uses): train.py, test.py and the complexity figures build every generator through `build`."""
from __future__ import annotations

import argparse
from typing import Callable, NamedTuple

import checkpoints
import jeanet
import model
import prior_guided
from tf1 import tf


def _eipnet_d(images, training, reuse) -> tf.Tensor:
    return model.discriminator(images, reuse)   # no batch norm: `training` changes nothing


def _no_options(prefix: str) -> dict:
    return {}


class Generator(NamedTuple):
    title: str                                    # the method's name in tables and figures
    build: Callable[..., model.GeneratorOutput]   # (lr, opt, training, reuse)
    discriminator: Callable[..., tf.Tensor] = _eipnet_d   # (images, training, reuse) -> logits
    priors: bool = False                          # outputs coarse SR and parsing maps
    # (checkpoint prefix) -> the architecture options its variables fix, {option: value}
    architecture: Callable[[str], dict] = _no_options


def edge_flags(opt) -> list[bool]:
    return [bool(b) for b in opt.edge_blocks]


def _edge_blocks_in(names: set[str], scope: str) -> list[int]:
    return [int(f"generator/{scope.format(k)}/w" in names) for k in (1, 2, 3)]


def _eipnet_architecture(prefix: str) -> dict:
    return {"tail": checkpoints.tail_of(prefix),
            "edge_blocks": _edge_blocks_in(checkpoints.variable_names(prefix), model.EDGE_SCOPE)}


def _jeanet_architecture(prefix: str) -> dict:
    names = checkpoints.variable_names(prefix)
    return {"edge_blocks": _edge_blocks_in(names, jeanet.EDGE_SCOPE),
            "no_adaptive_shortcuts": "generator/alpha_1" not in names}


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
    "eipnet": Generator("EIPNet", _eipnet, architecture=_eipnet_architecture),
    "jeanet": Generator("JEANet", _jeanet, architecture=_jeanet_architecture),
    "prior_guided": Generator("Prior-guided", _prior_guided, prior_guided.discriminator,
                              priors=True),
    "prior_guided_gan": Generator("Prior-guided GAN", _prior_guided, prior_guided.discriminator,
                                  priors=True),
}


def build(opt, lr, training=False, reuse=None) -> model.GeneratorOutput:
    """The generator of opt.model on `lr` (N,16,16,3) 0..255; `training` (bool or bool
    tensor) switches batch-norm statistics where a model has them."""
    return GENERATORS[opt.model].build(lr, opt, training, reuse)


def trained_options(opt, prefix: str) -> tuple[argparse.Namespace, list[str]]:
    """A copy of opt with the architecture options that the checkpoint at `prefix` fixes
    (EIPNet's tail, the edge blocks, JEANet's shortcuts), so that an ablation checkpoint is
    never run through the full graph; and a note for each option the user set otherwise."""
    found = GENERATORS[opt.model].architecture(prefix)
    notes = [f"note: {prefix} was trained with --{k} {v}; using that, not {getattr(opt, k)}"
             for k, v in found.items() if getattr(opt, k) not in (v, "auto")]
    return argparse.Namespace(**{**vars(opt), **found}), notes


def discriminate(opt, images, training=False, reuse=None) -> tf.Tensor:
    """The logits of opt.model's discriminator on RGB 0..255 `images`."""
    return GENERATORS[opt.model].discriminator(images, training, reuse)
