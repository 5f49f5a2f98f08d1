"""Speed and memory of EIPNet on this machine, against the machine's own GEMM rate; with
--eval, the speed of test.py's evaluation protocol.

    python tools/benchmark.py [--data ../shared/data/lfw128/train] [--steps 8] [--batch 16]
                        [--precisions fp32,bf16] [--onednn on,off] [--isa AVX2]
    python tools/benchmark.py --eval [--eval_data ../shared/data/lfw128/val] [--faces 100]
                        [--reference OLD_CHECKOUT]

The table starts with the CPU model and its relevant flags. For each oneDNN setting and
precision it measures, each configuration in its own process (so peak memory is its own):
- a matmul probe: a 2048x2048 fp32 GEMM fed from variables (constants would be folded away);
- inference images/s;
- one full training step (the paper's first-phase losses, L_rgb + L_e + L_lc + L_id) fed by
  the real loader, and fed from arrays in memory;
- the bare generator step (L_rgb only).
GFLOP/s counts the generator's convolutions only (2 FLOP per MAC; a training step counts 3x
the forward pass); "% of GEMM" divides it by the probe's fp32 rate under the same setting.
`--isa AVX2` caps oneDNN's kernels at AVX2 (ONEDNN_MAX_CPU_ISA), to see an AVX2-only CPU's
oneDNN code path on an AVX-512 machine. bf16 is measured only where the CPU has bf16
instructions (tf1.BF16_FLAGS).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
from pathlib import Path
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # `python tools/benchmark.py` runs too

GEN_GMAC = {8: 10.128, 4: 7.179}  # per image at each --scale, checked by tests/test_model.py
GEMM_N = 2048
KINDS = ("gemm", "inference", "train_loader", "train_memory", "train_bare")
EVAL_PROTOCOLS = {"full protocol": [], "full protocol, --no_figures": ["--no_figures"],
                  "PSNR/SSIM only": ["--metrics", "psnr,ssim"]}


def timed(run, steps: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        run()
    tic = time.perf_counter()
    for _ in range(steps):
        run()
    return (time.perf_counter() - tic) / steps


def gemm_gflops(steps: int) -> float:
    from tf1 import tf
    a = tf.Variable(tf.random.normal([GEMM_N, GEMM_N], seed=1))
    b = tf.Variable(tf.random.normal([GEMM_N, GEMM_N], seed=2))
    product = tf.reduce_sum(tf.matmul(a, b))   # one scalar back, so the copy-out is not timed
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        return 2 * GEMM_N ** 3 / timed(lambda: sess.run(product), steps) / 1e9


def images_per_second(kind: str, precision: str, args) -> float:
    import data
    from networks import generators
    from options.train_options import TrainOptions
    from tf1 import session_config, tf
    import train

    paths = data.list_images(args.data)
    losses = "rgb" if kind == "train_bare" else "rgb,edge,lc,id"
    opt = TrainOptions().parse(["--batchSize", str(args.batch), "--losses", losses,
                                "--precision", precision, "--scale", str(args.scale)],
                               verbose=False)
    size = generators.lr_size(opt)
    with tf.Session(config=session_config(precision)) as sess:
        if kind == "inference":
            lr = generators.lr_placeholder(opt)
            out = generators.build(opt, lr)
            sess.run(tf.global_variables_initializer())
            _, batch = data.load_eval_set(paths[:args.batch], lr_size=size)
            return args.batch / timed(lambda: sess.run(out.rgb, {lr: batch.lr}), args.steps)
        g = train.build_train_graph(opt)
        sess.run(tf.global_variables_initializer())
        loader = data.BatchLoader(paths, args.batch, threads=opt.loader_threads, lr_size=size)
        fixed = loader.next()
        if kind == "train_memory":
            step = lambda: sess.run(g.train_g, train.feed(g, fixed))
        else:
            step = lambda: sess.run(g.train_g, train.feed(g, loader.next()))
        sec = timed(step, args.steps)
        loader.close()
        return args.batch / sec


def measure(kind: str, precision: str, args) -> dict:
    import tf1
    row = {"kind": kind, "precision": tf1.usable_precision(precision),
           "onednn": tf1.onednn_enabled()}
    if kind == "gemm":
        row["gflop_s"] = gemm_gflops(max(args.steps, 8))
    else:
        row["img_s"] = images_per_second(kind, precision, args)
        row["gflop_s"] = row["img_s"] * GEN_GMAC[args.scale] * 2 * (1 if kind == "inference" else 3)
    row["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    return row


def run_isolated(kind: str, precision: str, args) -> dict:
    """One measurement in a fresh process, which inherits the oneDNN settings of os.environ."""
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(measure, (kind, precision, args))


def machine_line(args) -> str:
    from tf1 import machine
    cap = f"; oneDNN ISA capped at {args.isa}" if args.isa else ""
    return (f"{machine()}{cap}; EIPNet {args.scale}x, batch {args.batch}, {args.steps} timed "
            f"steps after 2 warm-up steps")


def table(rows: list[dict]) -> list[str]:
    lines = ["| oneDNN | measurement | precision | images/s | GFLOP/s | % of GEMM | peak RSS (GB) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        gemm = next(g["gflop_s"] for g in rows if g["kind"] == "gemm" and g["onednn"] == r["onednn"])
        img_s = f"{r['img_s']:.2f}" if "img_s" in r else "-"
        pct = "-" if r["kind"] == "gemm" else f"{100 * r['gflop_s'] / gemm:.0f}%"
        lines.append(f"| {'on' if r['onednn'] else 'off'} | {r['kind']} | {r['precision']} | "
                     f"{img_s} | {r['gflop_s']:.0f} | {pct} | {r['peak_rss_gb']:.2f} |")
    return lines


def eval_seconds(repo: str, faces: str, out: str, extra: list[str]) -> float:
    """Wall time of one whole `python test.py` of the checkout `repo` (its shipped weights)."""
    cmd = [sys.executable, "test.py", "--test_path", faces, "--result_dir", out, *extra]
    tic = time.perf_counter()
    subprocess.run(cmd, cwd=repo, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - tic


def numbers(tree, path: str = "") -> dict:
    """The numeric leaves of a summary.json's metrics and TAR rows, by path."""
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in numbers(sub, f"{path}/{key}").items()}
    if isinstance(tree, list):
        return {k: v for i, sub in enumerate(tree) for k, v in numbers(sub, f"{path}/{i}").items()}
    return {path: tree} if isinstance(tree, (int, float)) and not isinstance(tree, bool) else {}


def largest_difference(out_a: str, out_b: str) -> float:
    """The largest relative difference between two runs' metric means and TARs."""
    a, b = (json.load(open(os.path.join(o, "summary.json"))) for o in (out_a, out_b))
    a, b = (numbers({"metrics": s["metrics"], "tar": s["tar"]}) for s in (a, b))
    if a.keys() != b.keys():
        raise ValueError(f"the summaries differ in their entries: {sorted(a.keys() ^ b.keys())}")
    return max(abs(a[k] - b[k]) / max(abs(a[k]), 1e-12) for k in a)


def eval_benchmark(args) -> None:
    """Whole test.py commands per protocol: the reference checkout (if given), then this one
    with a new evaluation cache (cold: every face scored in full, the cache filled) and again
    (warm: the cache holds every face's model-independent results)."""
    from tf1 import machine
    here = str(Path(__file__).resolve().parents[1])   # the checkout's root
    names = sorted(f for f in os.listdir(args.eval_data) if not f.startswith("."))[:args.faces]
    lines = ["| protocol | code | seconds | faces/s | speed-up | largest relative difference |",
             "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        faces = os.path.join(tmp, "faces")
        os.makedirs(faces)
        for name in names:
            os.symlink(os.path.abspath(os.path.join(args.eval_data, name)),
                       os.path.join(faces, name))
        for k, (protocol, extra) in enumerate(EVAL_PROTOCOLS.items()):
            cache = ["--eval_cache", os.path.join(tmp, f"cache{k}.sqlite")]
            runs = {**({"reference": (os.path.abspath(args.reference), extra)}
                       if args.reference else {}),
                    "this checkout, cold cache": (here, extra + cache),
                    "this checkout, warm cache": (here, extra + cache)}
            outs = {label: os.path.join(tmp, f"{k}{j}") for j, label in enumerate(runs)}
            sec = {label: eval_seconds(repo, faces, outs[label], flags)
                   for label, (repo, flags) in runs.items()}
            for label in runs:
                compared = args.reference and label != "reference"
                ratio = sec["reference"] / sec[label] if compared else None
                diff = largest_difference(outs["reference"], outs[label]) if compared else None
                lines.append(f"| {protocol} | {label} | {sec[label]:.1f} | "
                             f"{len(names) / sec[label]:.2f} | "
                             f"{'-' if ratio is None else f'{ratio:.2f}x'} | "
                             f"{'-' if diff is None else f'{diff:.1e}'} |")
    print(f"{machine()}; {len(names)} faces of {args.eval_data}, whole test.py commands "
          f"(start-up included)")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/lfw128/train")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--scale", type=int, default=8, choices=sorted(GEN_GMAC),
                        help="EIPNet's upscaling factor (train.py --scale)")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--onednn", default="on", help="on, off or on,off (TF_ENABLE_ONEDNN_OPTS)")
    parser.add_argument("--isa", default="", help="cap oneDNN's ISA, e.g. AVX2 (ONEDNN_MAX_CPU_ISA)")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--eval", action="store_true",
                        help="time test.py's evaluation protocol instead (see above)")
    parser.add_argument("--eval_data", default="../shared/data/lfw128/val")
    parser.add_argument("--faces", type=int, default=100)
    parser.add_argument("--reference", default="",
                        help="another checkout whose test.py runs beside this one")
    args = parser.parse_args()
    if args.eval and args.scale != 8:
        parser.error("--eval times test.py with the shipped 8x model; --scale is for the "
                     "training and inference benchmark")
    if args.eval:
        return eval_benchmark(args)
    if args.isa:
        os.environ["ONEDNN_MAX_CPU_ISA"] = args.isa
    from tf1 import usable_precision
    precisions = [p for p in args.precisions.split(",") if usable_precision(p) == p]
    rows = []
    for setting in args.onednn.split(","):
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = {"on": "1", "off": "0"}[setting]
        rows.append(run_isolated("gemm", "fp32", args))
        rows += [run_isolated(k, p, args) for p in precisions
                 if setting == "on" or p == "fp32"    # bf16 is oneDNN's pass
                 for k in args.kinds.split(",") if k != "gemm"]
    print(machine_line(args))
    print("\n".join(table(rows)))


if __name__ == "__main__":
    main()
