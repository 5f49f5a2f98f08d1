"""A trained generator restored in a graph and session of its own (inference batch norm): what
test.py, enhance.py, export.py and the tools run. Graph builders stay pure (generators.build);
this owns the session, the restore and the feeds."""
from __future__ import annotations

import functools

import numpy as np

import checkpoints
from networks import generators
from tf1 import session_config, tf

EDGE_SIZES = (32, 64, 128)


class Generator:
    """The restored generator in a graph and session of its own (inference batch norm)."""

    def __init__(self, opt, prefix: str):
        # opt with the architecture the checkpoint fixes (scale, tail, edge blocks, ...)
        self.options, notes = generators.trained_options(opt, prefix)
        self.lr_size = generators.lr_size(self.options)
        self.build = functools.partial(generators.build, self.options)
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.lr = generators.lr_placeholder(self.options)
            self.out = self.build(self.lr)
            saver = checkpoints.generator_saver()
        self.native_lr = self.native_out = None   # native(): built on first use
        self.sess = tf.Session(graph=self.graph, config=session_config(opt.precision, opt.gpu_ids))
        try:
            saver.restore(self.sess, prefix)
        except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as err:
            raise ValueError(f"{prefix!r} does not fit a generator with --model {opt.model}: "
                             f"it was trained as another model or with other architecture "
                             f"options, which its run's opt.txt names "
                             f"({err.message.splitlines()[0]})") from err
        for note in notes:   # only once the weights fit
            print(note)

    def __call__(self, lr: np.ndarray) -> tuple[np.ndarray, dict]:
        """SR (N,128,128,3) and the model's other outputs {tag: array}, unclipped floats:
        edge32/64/128 (N,s,s,1) of the edge blocks that are on; coarse (N,128,128,3) and
        parsing (N,128,128,11) of the prior-guided models."""
        fetch = {"rgb": self.out.rgb, **side_outputs(self.out)}
        got = self.sess.run(fetch, {self.lr: np.asarray(lr, np.float32)})
        return got.pop("rgb"), got

    def native(self, lr: np.ndarray) -> np.ndarray:
        """SR (N,sn,sn,3) of faces (N,n,n,3) of any size n, s the model's scale (EIPNet, whose
        layers are all convolutions); unclipped floats. The graph for it is built on first use
        and shares the restored weights."""
        if self.native_out is None:
            with self.graph.as_default():
                self.native_lr = tf.placeholder(tf.float32, [None, None, None, 3], "lr_any")
                self.native_out = self.build(self.native_lr, reuse=True).rgb
        return self.sess.run(self.native_out, {self.native_lr: np.asarray(lr, np.float32)})

    def close(self) -> None:
        self.sess.close()


def side_outputs(out) -> dict:
    """The generator's outputs besides SR, by the tag of their files: edge32/64/128 of the edge
    blocks that are on; coarse and parsing of the prior-guided models."""
    priors = {"coarse": out.coarse, "parsing": out.parsing}
    return {**{f"edge{s}": e for s, e in zip(EDGE_SIZES, out.edges) if e is not None},
            **{tag: t for tag, t in priors.items() if t is not None}}
