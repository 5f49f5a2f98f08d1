"""Every x86-64 CPU: oneDNN on by default; bf16 only where the CPU has bf16 instructions,
fp16 only with a GPU."""
import os
import platform
import subprocess
import sys

import pytest

from conftest import ROOT
from options.train_options import TrainOptions
import tf1

X86 = platform.machine().lower() in ("x86_64", "amd64")


def test_cpu_info_reads_this_machine():
    name, flags = tf1.cpu_info()
    assert name
    if X86 and os.path.exists("/proc/cpuinfo"):
        assert {"sse2", "fxsr"} <= flags        # every x86-64 CPU has them


@pytest.fixture
def cpu(monkeypatch):
    """Pretend to run on a CPU with the given flags."""
    def use(flags):
        monkeypatch.setattr(tf1, "cpu_info", lambda: ("Test CPU", frozenset(flags)))
        monkeypatch.setattr(tf1, "onednn_enabled", lambda: True)
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
        tf1._say_fp32.cache_clear()
    yield use
    tf1._say_fp32.cache_clear()


def test_bf16_without_bf16_instructions_says_so_once_and_runs_fp32(cpu, capsys):
    cpu({"sse2", "avx", "avx2", "fma", "avx512f"})
    opt = TrainOptions().parse(["--precision", "bf16"], verbose=False)
    assert opt.precision == "fp32"
    config = tf1.session_config("bf16")
    assert config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 == 0  # DEFAULT
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "avx512_bf16" in lines[0] and "Test CPU" in lines[0]
    assert "fp32" in lines[0]


@pytest.mark.parametrize("flag", tf1.BF16_FLAGS)
def test_bf16_with_bf16_instructions_turns_on_mixed_precision(cpu, capsys, flag):
    cpu({"avx2", flag})
    assert TrainOptions().parse(["--precision", "bf16"], verbose=False).precision == "bf16"
    config = tf1.session_config("bf16")
    on = tf1.rewriter_config_pb2.RewriterConfig.ON
    assert config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 == on
    assert capsys.readouterr().err == ""


def onednn_in_fresh_process(env_value):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if env_value is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = env_value
    out = subprocess.run([sys.executable, "-c", "import tf1; print(tf1.onednn_enabled())"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.skipif(not X86, reason="oneDNN's default is set for x86-64 CPUs only")
def test_onednn_on_by_default_and_the_users_setting_wins():
    assert onednn_in_fresh_process(None) == "True"     # also on AVX2-only CPUs
    assert onednn_in_fresh_process("0") == "False"


def test_bf16_with_onednn_off_says_so(cpu, capsys, monkeypatch):
    cpu({"avx512_bf16"})
    monkeypatch.setattr(tf1, "onednn_enabled", lambda: False)
    assert tf1.usable_precision("bf16") == "fp32"
    assert "TF_ENABLE_ONEDNN_OPTS=0" in capsys.readouterr().err


def test_fp16_without_a_gpu_says_so(cpu, capsys, monkeypatch):
    monkeypatch.setattr(tf1, "has_gpu", lambda: False)
    assert TrainOptions().parse(["--precision", "fp16"], verbose=False).precision == "fp32"
    assert tf1.session_config("fp16").graph_options.rewrite_options.auto_mixed_precision == 0
    assert "no GPU" in capsys.readouterr().err
    monkeypatch.setattr(tf1, "has_gpu", lambda: True)
    on = tf1.rewriter_config_pb2.RewriterConfig.ON
    assert tf1.session_config("fp16").graph_options.rewrite_options.auto_mixed_precision == on


def test_bf16_with_onednn_capped_below_bf16_says_so(cpu, capsys, monkeypatch):
    cpu({"avx512_bf16"})
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert tf1.usable_precision("bf16") == "fp32"
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in capsys.readouterr().err
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx512_core_bf16")
    assert tf1.usable_precision("bf16") == "bf16"
