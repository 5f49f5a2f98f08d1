"""TensorFlow 1.x semantics on a current TensorFlow, and the session config for this CPU.
Every module imports `tf` from here."""
from __future__ import annotations

import os
import platform
import re
import sys
from functools import lru_cache

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX512_VNNI/BF16 or AMX.
# On AVX2-only CPUs its fallback (Eigen) ran the generator at 64% of the GEMM rate against
# oneDNN's 89% (tools/benchmark.py, docs/benchmark.md) and has no gradient for dilated convs.
# A user's own TF_ENABLE_ONEDNN_OPTS wins.
if platform.machine().lower() in ("x86_64", "amd64"):
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import tensorflow.compat.v1 as tf  # noqa: E402

tf.logging.set_verbosity(tf.logging.ERROR)   # first: disable_v2_behavior warns otherwise
tf.disable_v2_behavior()

from tensorflow.core.protobuf import rewriter_config_pb2  # noqa: E402
from tensorflow.python.util import _pywrap_util_port  # noqa: E402

# CPU flags that give oneDNN native bf16 arithmetic; without them bf16 is emulated or skipped.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# ONEDNN_MAX_CPU_ISA caps that keep bf16 kernels (below them, a bf16 graph aborts the process)
BF16_ISA_CAPS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512", "AVX512_CORE_AMX",
                 "AVX10_1_512_AMX", "AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX_FP16", "ALL",
                 "DEFAULT")


@lru_cache(maxsize=None)
def cpu_info() -> tuple[str, frozenset[str]]:
    """The CPU's model name and feature flags (Linux /proc/cpuinfo; no flags elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return platform.processor() or platform.machine(), frozenset()
    name = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    return (name.group(1).strip() if name else platform.machine(),
            frozenset(flags.group(1).split() if flags else ()))


# the flags that decide which kernels and precisions run fast, shown by the benchmarks
SHOWN_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")


def machine() -> str:
    """'CPU: <model>, <n> cores; flags: ...; TensorFlow <version>', the benchmarks' first line."""
    name, flags = cpu_info()
    shown = ", ".join(f for f in SHOWN_FLAGS if f in flags) or "none of " + "/".join(SHOWN_FLAGS)
    return f"CPU: {name}, {os.cpu_count()} cores; flags: {shown}; TensorFlow {tf.__version__}"


def has_bf16() -> bool:
    return any(flag in cpu_info()[1] for flag in BF16_FLAGS)


def onednn_enabled() -> bool:
    """Whether TensorFlow runs its oneDNN kernels in this process."""
    return bool(_pywrap_util_port.IsMklEnabled())


@lru_cache(maxsize=None)
def _say_fp32(precision: str, reason: str) -> None:
    print(f"--precision {precision}: {reason}, so it would not run faster; running fp32",
          file=sys.stderr)


def isa_cap() -> str:
    return os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL")


def has_gpu() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def usable_precision(precision: str) -> str:
    """`precision`, except where it cannot help: bf16 without bf16 instructions, with oneDNN
    off or capped below them, fp16 without a GPU. Said once, then fp32."""
    if precision == "bf16" and not has_bf16():
        _say_fp32("bf16", f"this CPU ({cpu_info()[0]}) has no {' or '.join(BF16_FLAGS)} flag")
    elif precision == "bf16" and not onednn_enabled():
        _say_fp32("bf16", "oneDNN is off (TF_ENABLE_ONEDNN_OPTS=0) and its pass does the casting")
    elif precision == "bf16" and isa_cap().upper() not in BF16_ISA_CAPS:
        _say_fp32("bf16", f"ONEDNN_MAX_CPU_ISA={isa_cap()} caps oneDNN below its bf16 kernels")
    elif precision == "fp16" and not has_gpu():
        _say_fp32("fp16", "no GPU is visible and the CUDA mixed-precision pass needs one")
    else:
        return precision
    return "fp32"


def session_config(precision: str = "fp32", gpu_ids: str | None = None) -> tf.ConfigProto:
    """Session config; bf16 turns on oneDNN auto mixed precision (CPU), fp16 the CUDA one.
    Weights stay fp32 in both (mixed precision only casts compute)."""
    config = tf.ConfigProto()
    config.gpu_options.allow_growth = True
    if gpu_ids:
        config.gpu_options.visible_device_list = gpu_ids
    rewrite = config.graph_options.rewrite_options
    precision = usable_precision(precision)
    if precision == "bf16":
        rewrite.auto_mixed_precision_onednn_bfloat16 = rewriter_config_pb2.RewriterConfig.ON
    elif precision == "fp16":
        rewrite.auto_mixed_precision = rewriter_config_pb2.RewriterConfig.ON
    return config
