"""Speed and memory of EIPNet on this machine, against the machine's own GEMM rate.

    python benchmark.py [--data ../shared/data/lfw128/train] [--steps 8] [--batch 16]
                        [--precisions fp32,bf16] [--onednn on,off] [--isa AVX2]

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
import multiprocessing as mp
import os
import resource
import time

GEN_GMAC = 10.128  # per 16->128 image, checked by tests/test_model.py
GEMM_N = 2048
KINDS = ("gemm", "inference", "train_loader", "train_memory", "train_bare")


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
    import model
    from options.train_options import TrainOptions
    from tf1 import session_config, tf
    import train

    paths = data.list_images(args.data)
    losses = "rgb" if kind == "train_bare" else "rgb,edge,lc,id"
    opt = TrainOptions().parse(["--batchSize", str(args.batch), "--losses", losses,
                                "--precision", precision], verbose=False)
    with tf.Session(config=session_config(precision)) as sess:
        if kind == "inference":
            lr = tf.placeholder(tf.float32, [None, 16, 16, 3])
            out = model.generator(lr)
            sess.run(tf.global_variables_initializer())
            _, batch = data.load_eval_set(paths[:args.batch])
            return args.batch / timed(lambda: sess.run(out.rgb, {lr: batch.lr}), args.steps)
        g = train.build_train_graph(opt)
        sess.run(tf.global_variables_initializer())
        loader = data.BatchLoader(paths, args.batch, threads=opt.loader_threads)
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
        row["gflop_s"] = row["img_s"] * GEN_GMAC * 2 * (1 if kind == "inference" else 3)
    row["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    return row


def run_isolated(kind: str, precision: str, args) -> dict:
    """One measurement in a fresh process, which inherits the oneDNN settings of os.environ."""
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(measure, (kind, precision, args))


def machine_line(args) -> str:
    from tf1 import machine
    cap = f"; oneDNN ISA capped at {args.isa}" if args.isa else ""
    return (f"{machine()}{cap}; batch {args.batch}, {args.steps} timed steps after 2 warm-up "
            f"steps")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/lfw128/train")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--onednn", default="on", help="on, off or on,off (TF_ENABLE_ONEDNN_OPTS)")
    parser.add_argument("--isa", default="", help="cap oneDNN's ISA, e.g. AVX2 (ONEDNN_MAX_CPU_ISA)")
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args()
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
