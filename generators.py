"""The one place that maps --model to its generator: train.py, test.py and the complexity
figures build every generator through `build`."""
from __future__ import annotations

from typing import Callable, NamedTuple

import checkpoints
import jeanet
import model


class Generator(NamedTuple):
    title: str                                    # the method's name in tables and figures
    build: Callable[..., model.GeneratorOutput]   # (lr, opt, training, reuse)


def edge_flags(opt) -> list[bool]:
    return [bool(b) for b in opt.edge_blocks]


def _eipnet(lr, opt, training, reuse) -> model.GeneratorOutput:
    # no batch norm: `training` changes nothing
    return model.generator(lr, checkpoints.choose_tail(opt.tail, None), edge_flags(opt), reuse)


def _jeanet(lr, opt, training, reuse) -> model.GeneratorOutput:
    return jeanet.generator(lr, edge_flags(opt), not opt.no_adaptive_shortcuts,
                            training=training, reuse=reuse)


GENERATORS = {"eipnet": Generator("EIPNet", _eipnet), "jeanet": Generator("JEANet", _jeanet)}


def build(opt, lr, training=False, reuse=None) -> model.GeneratorOutput:
    """The generator of opt.model on `lr` (N,16,16,3) 0..255; `training` (bool or bool
    tensor) switches batch-norm statistics where a model has them."""
    return GENERATORS[opt.model].build(lr, opt, training, reuse)
