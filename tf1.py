"""TensorFlow 1.x semantics on a current TensorFlow: every module imports `tf` from here."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow.compat.v1 as tf  # noqa: E402

tf.disable_v2_behavior()
tf.logging.set_verbosity(tf.logging.ERROR)

from tensorflow.core.protobuf import rewriter_config_pb2  # noqa: E402


def session_config(precision: str = "fp32", gpu_ids: str | None = None) -> tf.ConfigProto:
    """Session config; bf16 turns on oneDNN auto mixed precision (CPU), fp16 the CUDA one.
    Weights stay fp32 in both (mixed precision only casts compute)."""
    config = tf.ConfigProto()
    config.gpu_options.allow_growth = True
    if gpu_ids:
        config.gpu_options.visible_device_list = gpu_ids
    rewrite = config.graph_options.rewrite_options
    if precision == "bf16":
        rewrite.auto_mixed_precision_onednn_bfloat16 = rewriter_config_pb2.RewriterConfig.ON
    elif precision == "fp16":
        rewrite.auto_mixed_precision = rewriter_config_pb2.RewriterConfig.ON
    return config
