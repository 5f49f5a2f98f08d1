"""Finding, inspecting and restoring generator checkpoints (ours and the authors')."""
from __future__ import annotations

import os

from tf1 import tf

G_WEIGHT = "G_weight.ckpt"   # generator-only release checkpoint, the authors' file name
FULL_PREFIX = "model.ckpt"   # full training state (G, D, optimiser slots, global step)


def resolve(path: str) -> str:
    """A checkpoint prefix from a folder (its G_weight.ckpt, else its latest checkpoint) or a
    prefix; raises FileNotFoundError naming the path and the fix."""
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, G_WEIGHT + ".index")):
            return os.path.join(path, G_WEIGHT)
        latest = tf.train.latest_checkpoint(path)
        if latest:
            return latest
    elif os.path.exists(path + ".index"):
        return path
    raise FileNotFoundError(
        f"no checkpoint at {path!r}: pass --weight_path a folder holding {G_WEIGHT} "
        f"(for example the authors' checkpoint/CelebA) or a checkpoint prefix")


def variable_shapes(prefix: str) -> dict[str, list[int]]:
    return dict(tf.train.list_variables(prefix))


def tail_of(shapes: dict[str, list[int]]) -> str:
    """'released' if a checkpoint's last conv generator/RGB is 1x1, else 'paper' (3x3);
    KeyError if it has none."""
    return "released" if shapes["generator/RGB/w"][0] == 1 else "paper"


def generator_saver(max_to_keep: int = 1) -> tf.train.Saver:
    """The generator's weights and its batch-norm moving averages (JEANet), no optimiser slots."""
    moving = tf.get_collection(tf.GraphKeys.MOVING_AVERAGE_VARIABLES, "generator")
    return tf.train.Saver(tf.trainable_variables("generator") + moving, max_to_keep=max_to_keep)
