"""Inference speed of one generator in every runtime, measured side by side in one run:
TF Session (test.py's path), the SavedModel in TF2 (its serving_default concrete function),
ONNX Runtime (CPU) and OpenVINO (CPU), at batch 1 and batch 16.

    python tools/runtimes.py [--weight_path checkpoint/eipnet_lfw128] [--model eipnet]
                       [--data ../shared/data/lfw128/val] [--rounds 5]

The checkpoint is exported (float32, export.py) into a scratch folder; then each runtime gets
a process of its own and loads its export. They take turns, round after round (the order
rotates), so that load from other jobs on a shared machine falls on all of them alike. Each
turn times --calls_b1 batch-1 calls and one batch-16 call on real faces (HR degraded to 16x16,
32x32 for a --scale 4 EIPNet, as in test.py). The table gives the median images/s, the speed-up over TF Session and each
runtime's largest difference from TF Session's SR on those faces. The first line names the
CPU. Every runtime uses its default thread count; OpenVINO is asked for fp32. On a CPU with
bf16 instructions two more rows show OpenVINO's default there, bf16, beside test.py's
--precision bf16; they do not give fp32's outputs, so only the fp32 rows decide whether a
runtime is worth a test.py option (WIN times TF Session's speed at both batch sizes).
"""
from __future__ import annotations

import argparse
import functools
import multiprocessing as mp
import os
from pathlib import Path
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # `python tools/runtimes.py` runs too

BATCHES = (1, 16)
WIN = 1.3   # a speed-up over TF Session that would justify another runtime in test.py


def tf_session(export_dir: str, opt_args: list[str], precision: str = "fp32"):
    import checkpoints
    from networks.restored import Generator
    from options.test_options import TestOptions
    opt = TestOptions().parse(opt_args + ["--precision", precision], verbose=False)
    gen = Generator(opt, checkpoints.resolve(opt.weight_path))
    return lambda lr: gen(lr)[0]


def tf2_savedmodel(export_dir: str, opt_args: list[str]):
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")   # as tf1.py: both TF rows on oneDNN
    import tensorflow as tf   # TF2 behaviour: no tf1 import in this process
    serve = tf.saved_model.load(os.path.join(export_dir, "savedmodel")).signatures[
        "serving_default"]
    return lambda lr: serve(lr=tf.constant(lr))["sr"].numpy()


def onnxruntime_cpu(export_dir: str, opt_args: list[str]):
    import onnxruntime as ort
    session = ort.InferenceSession(os.path.join(export_dir, "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    return lambda lr: session.run(["sr"], {"lr": lr})[0]


def openvino_cpu(export_dir: str, opt_args: list[str], precision: str = "f32"):
    import openvino as ov
    compiled = ov.Core().compile_model(os.path.join(export_dir, "model.onnx"), "CPU",
                                       {"INFERENCE_PRECISION_HINT": precision})
    return lambda lr: compiled(lr)[compiled.output("sr")]


REFERENCE = "TF Session (test.py)"
RUNTIMES = {   # name in the table -> loader (export folder, test.py options) -> run(lr) -> sr
    REFERENCE: tf_session,
    "TF2 SavedModel (tf.function)": tf2_savedmodel,
    "ONNX Runtime (CPU)": onnxruntime_cpu,
    "OpenVINO (CPU, fp32)": openvino_cpu,
}
# where the CPU has bf16 instructions: OpenVINO's default precision there, and test.py's
# --precision bf16 beside it (neither gives fp32's outputs, so neither can win)
BF16_REFERENCE = "TF Session (test.py --precision bf16)"
BF16_RUNTIMES = {
    BF16_REFERENCE: functools.partial(tf_session, precision="bf16"),
    "OpenVINO (CPU, bf16, its default here)": functools.partial(openvino_cpu, precision="bf16"),
}


def serve(name: str, export_dir: str, opt_args: list[str], conn) -> None:
    """A runtime's process: load, then answer (lr, calls) with (seconds per call, last SR)
    until it gets None."""
    run = {**RUNTIMES, **BF16_RUNTIMES}[name](export_dir, opt_args)
    conn.send("ready")
    while (job := conn.recv()) is not None:
        lr, calls = job
        seconds = []
        for _ in range(calls):
            tic = time.perf_counter()
            sr = run(lr)
            seconds.append(time.perf_counter() - tic)
        conn.send((seconds, np.asarray(sr, np.float32)))


def real_faces(folder: str, n: int, size: int) -> np.ndarray:
    """n faces of `folder` degraded to size x size as test.py does, float32 (n,size,size,3)."""
    import data
    paths = data.list_images(folder)[:n]
    return np.stack([data.downscale(data.preset_crop(data.read_image(p), "aligned"), size=size)
                     for p in paths]).astype(np.float32)


def start(names: list[str], export_dir: str, opt_args: list[str]) -> dict:
    ctx = mp.get_context("spawn")
    workers = {}
    for name in names:
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(target=serve, args=(name, export_dir, opt_args, theirs), daemon=True)
        proc.start()
        workers[name] = (proc, mine)
        theirs.close()   # the child's end lives on in the child only: its death ends recv()
    for name, (_, conn) in workers.items():
        try:
            conn.recv()
        except EOFError:
            raise RuntimeError(f"{name} did not load (its traceback is above)") from None
    return workers


def measure(workers: dict, faces: np.ndarray, rounds: int, calls_b1: int) -> tuple[dict, dict]:
    """Median seconds per call {(name, batch): s} and each runtime's batch-16 SR."""
    seconds, sr = {key: [] for key in ((n, b) for n in workers for b in BATCHES)}, {}
    names = list(workers)
    for rnd in range(rounds + 1):   # round 0 warms every runtime up, untimed
        for name in names[rnd % len(names):] + names[:rnd % len(names)]:
            conn = workers[name][1]
            for b in BATCHES:
                conn.send((faces[:b], calls_b1 if b == 1 else 1))
                got, sr[name] = conn.recv()
                if rnd:
                    seconds[(name, b)] += got
    return {key: statistics.median(s) for key, s in seconds.items()}, sr


def machine_line(args, rounds_note: str) -> str:
    import onnxruntime
    import openvino
    from tf1 import machine
    return (f"{machine()}, ONNX Runtime {onnxruntime.__version__}, OpenVINO {openvino.get_version().split('-')[0]}; "
            f"{args.model} from {args.weight_path}, float32 in and out, default threads; "
            f"{rounds_note}")


def table(per_call: dict, sr: dict) -> list[str]:
    ref = {b: per_call[(REFERENCE, b)] for b in BATCHES}
    lines = ["| runtime | batch 1 (img/s) | batch 16 (img/s) | vs TF Session, batch 1 | "
             "vs TF Session, batch 16 | max abs diff from TF Session (0..255) |",
             "|---|---|---|---|---|---|"]
    for name in sr:
        speed = [f"{b / per_call[(name, b)]:.2f}" for b in BATCHES]
        ratio = [f"{ref[b] / per_call[(name, b)]:.2f}x" for b in BATCHES]
        diff = float(np.abs(sr[name] - sr[REFERENCE]).max())
        lines.append(f"| {name} | {' | '.join(speed)} | {' | '.join(ratio)} | {diff:.1e} |")
    return lines


def speedups(per_call: dict, reference: str, name: str) -> list[float]:
    return [per_call[(reference, b)] / per_call[(name, b)] for b in BATCHES]


def verdict(per_call: dict) -> str:
    """The fp32 runtime at least WIN times faster than TF Session at both batch sizes, if any."""
    slowest = {n: min(speedups(per_call, REFERENCE, n)) for n in RUNTIMES if n != REFERENCE}
    best = max(slowest, key=slowest.get)
    if slowest[best] >= WIN:
        return f"{best} is {slowest[best]:.2f}x faster than TF Session at both batch sizes"
    return (f"no runtime is {WIN}x faster than TF Session at both batch sizes (best: {best}, "
            f"{slowest[best]:.2f}x at its worse batch size)")


def bf16_line(per_call: dict) -> str:
    (name,) = [n for n in BF16_RUNTIMES if n != BF16_REFERENCE]
    b1, b16 = speedups(per_call, BF16_REFERENCE, name)
    return f"bf16: {name} is {b1:.2f}x / {b16:.2f}x {BF16_REFERENCE} at batch 1 / 16"


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weight_path", default="checkpoint/eipnet_lfw128")
    parser.add_argument("--model", default="eipnet")
    parser.add_argument("--data", default="../shared/data/lfw128/val")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls_b1", type=int, default=4, help="batch-1 calls per turn")
    args = parser.parse_args(argv)
    import export
    from tf1 import usable_precision
    bf16 = usable_precision("bf16") == "bf16"   # not where oneDNN is off or capped below bf16
    import checkpoints
    from networks.restored import Generator
    import data
    from networks import generators
    architecture = generators.GENERATORS[args.model].architecture(
        checkpoints.resolve(args.weight_path))
    faces = real_faces(args.data, max(BATCHES), data.lr_size(architecture.get("scale", 8)))
    opt_args = ["--model", args.model, "--weight_path", args.weight_path]
    rows = {**RUNTIMES, **(BF16_RUNTIMES if bf16 else {})}
    with tempfile.TemporaryDirectory() as export_dir:
        export.main(opt_args + ["--format", "savedmodel,onnx", "--output", export_dir])
        workers = start(list(rows), export_dir, opt_args)
        per_call, sr = measure(workers, faces, args.rounds, args.calls_b1)
        for proc, conn in workers.values():
            conn.send(None)
            proc.join()
    note = (f"median over {args.rounds} round(s) of {args.calls_b1} batch-1 call(s) and 1 "
            f"batch-16 call per runtime, runtimes taking turns")
    lines = [machine_line(args, note), "", *table(per_call, sr), "", verdict(per_call),
             *([bf16_line(per_call)] if bf16 else [])]
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
