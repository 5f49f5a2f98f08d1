"""The one place that maps --model to its generator (and the discriminator its adversarial loss
uses): train.py, test.py and the complexity figures build every generator through `build`."""
from __future__ import annotations

import argparse
from typing import Callable, NamedTuple

import checkpoints
import data
import model
from networks import jeanet, prior_guided, srresnet
from tf1 import tf


def _eipnet_d(images, opt, training, reuse) -> tf.Tensor:
    # no batch norm: `training` changes nothing
    return model.discriminator(images, reuse, opt.discriminator)


def _prior_guided_d(images, opt, training, reuse) -> tf.Tensor:
    return prior_guided.discriminator(images, training, reuse)


def _no_options(prefix: str) -> dict:
    return {}


class Generator(NamedTuple):
    title: str                                    # the method's name in tables and figures
    build: Callable[..., model.GeneratorOutput]   # (lr, opt, training, reuse)
    discriminator: Callable[..., tf.Tensor] = _eipnet_d   # (images, opt, training, reuse) -> logits
    priors: bool = False                          # outputs coarse SR and parsing maps
    # a checkpoint's prefix -> the architecture options it fixes, {option: value}
    architecture: Callable[[str], dict] = _no_options
    edge_weights: tuple = (1.0, 1.0, 1.0)         # of the edge loss at 32, 64, 128 px


def edge_flags(opt) -> list[bool]:
    return [bool(b) for b in opt.edge_blocks]


def _edge_blocks_in(shapes: dict, scope: str) -> list[int]:
    return [int(f"generator/{scope.format(k)}/w" in shapes) for k in (1, 2, 3)]


def _eipnet_architecture(prefix: str) -> dict:
    shapes = checkpoints.variable_shapes(prefix)
    if "generator/Step2_1/w" not in shapes:   # SRResNet and the prior-guided nets share RGB
        raise KeyError("generator/Step2_1/w")
    blocks = _edge_blocks_in(shapes, model.EDGE_SCOPE)
    scale = 8 if "generator/Step1_1/w" in shapes else 4   # 4x has no 32 px step (model.py)
    if scale == 4:
        blocks[0] = 1   # the 32 px flag switches nothing there: report the default
    return {"tail": checkpoints.tail_of(shapes), "edge_blocks": blocks, "scale": scale}


def _jeanet_architecture(prefix: str) -> dict:
    shapes = checkpoints.variable_shapes(prefix)
    return {"edge_blocks": _edge_blocks_in(shapes, jeanet.EDGE_SCOPE),
            "no_adaptive_shortcuts": "generator/alpha_1" not in shapes}


def _eipnet(lr, opt, training, reuse) -> model.GeneratorOutput:
    # no batch norm: `training` changes nothing
    tail = "paper" if opt.tail == "auto" else opt.tail   # auto: test.py reads the checkpoint's
    return model.generator(lr, tail, edge_flags(opt), reuse, opt.scale)


def _jeanet(lr, opt, training, reuse) -> model.GeneratorOutput:
    return jeanet.generator(lr, edge_flags(opt), not opt.no_adaptive_shortcuts,
                            training=training, reuse=reuse)


def perceptual_features(opt) -> str:
    """Which features L_vgg of this training uses: "vgg19", "facenet" (the offline stand-in,
    perceptual.py) or "none" (no L_vgg, or not training)."""
    if "vgg" not in getattr(opt, "losses", ()):
        return "none"
    return "vgg19" if opt.vgg19_weights else "facenet"


def prior_guided_design(opt) -> prior_guided.Design:
    return prior_guided.Design(opt.prior_input, opt.se_relu, opt.block_skip, not opt.no_res_bn,
                               perceptual_features(opt))


def _prior_guided_architecture(prefix: str) -> dict:
    """The Design options of generator/design; KeyError if the checkpoint has none (not a
    prior-guided generator, or one saved before the design was recorded)."""
    d = prior_guided.design_of(prefix)
    if d is None:
        raise KeyError(f"generator/{checkpoints.DESIGN}")
    return {"prior_input": d.prior_input, "se_relu": d.se_relu, "block_skip": d.block_skip,
            "no_res_bn": not d.res_bn}


def _prior_guided(lr, opt, training, reuse) -> model.GeneratorOutput:
    return prior_guided.generator(lr, reuse=reuse, training=training,
                                  design=prior_guided_design(opt))


def _srresnet(lr, opt, training, reuse) -> model.GeneratorOutput:
    return srresnet.generator(lr, reuse=reuse, training=training)


# the thesis's two methods share the generator; method 2 adds L_vgg and L_ad (train_options.py)
GENERATORS = {
    "eipnet": Generator("EIPNet", _eipnet, architecture=_eipnet_architecture),
    "jeanet": Generator("JEANet", _jeanet, architecture=_jeanet_architecture,
                        edge_weights=tuple(1 / r for r in jeanet.EDGE_R)),   # Eq 7's 1/r
    "prior_guided": Generator("Prior-guided", _prior_guided, _prior_guided_d, priors=True,
                              architecture=_prior_guided_architecture),
    "prior_guided_gan": Generator("Prior-guided GAN", _prior_guided, _prior_guided_d,
                                  priors=True, architecture=_prior_guided_architecture),
    # the thesis's baseline (Table 4.1); SRGAN's discriminator if trained with L_ad
    "srresnet": Generator("SRResNet", _srresnet, _prior_guided_d),
}


def lr_size(opt) -> int:
    """The side of opt's LR input: 16 px at 8x, 32 px at EIPNet's --scale 4."""
    return data.lr_size(opt.scale)


def lr_placeholder(opt) -> tf.Tensor:
    """A batch of LR faces (N,s,s,3), s = lr_size(opt), named "lr"."""
    s = lr_size(opt)
    return tf.placeholder(tf.float32, [None, s, s, 3], "lr")


def build(opt, lr, training=False, reuse=None) -> model.GeneratorOutput:
    """The generator of opt.model on `lr` (N,s,s,3) 0..255, s = lr_size(opt); `training` (bool
    or bool tensor) switches batch-norm statistics where a model has them."""
    return GENERATORS[opt.model].build(lr, opt, training, reuse)


def as_flag(option: str, value) -> str:
    """An option's value as it reads on the command line."""
    if isinstance(value, bool):
        return f"--{option}" if value else f"no --{option}"
    if isinstance(value, list):
        value = ",".join(map(str, value))
    return f"--{option} {value}"


def trained_options(opt, prefix: str) -> tuple[argparse.Namespace, list[str]]:
    """A copy of opt with the architecture options that the checkpoint at `prefix` fixes
    (EIPNet's tail, the edge blocks, JEANet's shortcuts), so that an ablation checkpoint is
    never run through the full graph; and a note for each option whose value (given or
    default) the checkpoint overrides. ValueError if the checkpoint is not of opt.model."""
    try:
        found = GENERATORS[opt.model].architecture(prefix)
    except KeyError as err:
        raise ValueError(f"{prefix!r} does not fit a generator with --model {opt.model}: it was "
                         f"trained as another model, which its run's opt.txt names (it has no "
                         f"{err.args[0]})") from err
    notes = [f"note: {prefix} was trained with {as_flag(k, v)}: using that, not "
             f"{as_flag(k, getattr(opt, k))}"
             for k, v in found.items() if getattr(opt, k) not in (v, "auto")]
    return argparse.Namespace(**{**vars(opt), **found}), notes


def discriminate(opt, images, training=False, reuse=None) -> tf.Tensor:
    """The logits of opt.model's discriminator on RGB 0..255 `images`."""
    return GENERATORS[opt.model].discriminator(images, opt, training, reuse)
