"""Speed and memory of EIPNet on this machine (issue: train/benchmark).

    python benchmark.py [--data ../shared/data/lfw128/train] [--steps 8] [--batch 16]

For fp32 and bf16 it measures, each configuration in its own process (so peak memory is its
own): inference images/s; one full training step (all non-adversarial losses of the paper's
first phase, L_rgb + L_e + L_lc + L_id) fed by the real loader and fed from arrays in memory;
and the bare generator step (L_rgb only). GFLOP/s counts the generator's convolutions only
(2 FLOP per MAC; a training step counts 3x the forward pass).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

GEN_GMAC = 10.128  # per 16->128 image, checked by tests/test_model.py


def timed(run, steps: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        run()
    tic = time.perf_counter()
    for _ in range(steps):
        run()
    return (time.perf_counter() - tic) / steps


def measure(kind: str, precision: str, args) -> dict:
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
            sec = timed(lambda: sess.run(out.rgb, {lr: batch.lr}), args.steps)
            flop_factor = 1
        else:
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
            flop_factor = 3
    ips = args.batch / sec
    return {"kind": kind, "precision": precision, "img_s": ips,
            "gflop_s": ips * GEN_GMAC * 2 * flop_factor,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}


def run_isolated(kind: str, precision: str, args) -> dict:
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(measure, (kind, precision, args))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/lfw128/train")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--precisions", default="fp32,bf16")
    args = parser.parse_args()
    kinds = ["inference", "train_loader", "train_memory", "train_bare"]
    rows = [run_isolated(k, p, args) for p in args.precisions.split(",") for k in kinds]
    print(f"batch {args.batch}, {args.steps} timed steps after 2 warm-up steps")
    print("| measurement | precision | images/s | generator GFLOP/s | peak RSS (GB) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['kind']} | {r['precision']} | {r['img_s']:.2f} | {r['gflop_s']:.0f} | "
              f"{r['peak_rss_gb']:.2f} |")
    for p in args.precisions.split(","):
        by = {r["kind"]: r["img_s"] for r in rows if r["precision"] == p}
        print(f"{p}: loader-fed step runs at {100 * by['train_loader'] / by['train_memory']:.0f}% "
              f"of the in-memory step")


if __name__ == "__main__":
    main()
