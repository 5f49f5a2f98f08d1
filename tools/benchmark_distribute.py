"""Steps/s of one training step on one device against MirroredStrategy over N logical CPU
devices (train.py --strategy mirrored --cpu_devices N), at the same global batch of real faces.

    python tools/benchmark_distribute.py [--data ../shared/data/lfw128/train] [--batch 4]
                                   [--devices 2] [--steps 5] [--losses rgb,edge,lc,id]

One CPU split into logical devices gains nothing (the replicas share its cores); this measures
what the strategy's replication and all-reduce cost on top.
"""
from __future__ import annotations

import argparse
import glob
import os
from pathlib import Path
import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # `python tools/benchmark_distribute.py` runs too

import data
import distribute
from options.train_options import TrainOptions
from tf1 import machine, session_config, tf
from tools.benchmark import timed
import train


def steps_per_second(args, strategy: str, batch: data.Example) -> float:
    opt = TrainOptions().parse(["--losses", args.losses, "--batchSize", str(args.batch),
                                "--strategy", strategy, "--cpu_devices", str(args.devices)],
                               verbose=False)
    with tf.Graph().as_default():
        if strategy == "none":
            g, sess = train.build_train_graph(opt), tf.Session(config=session_config())
        else:
            cluster = distribute.Cluster(opt)
            g = cluster.replicate(lambda inputs: train.build_train_graph(opt, inputs),
                                  train.train_inputs(opt))
            sess = cluster.session()
        with sess:
            sess.run(tf.global_variables_initializer())
            fed = train.feed(g, batch)
            return 1.0 / timed(lambda: sess.run(g.train_g, fed), args.steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/lfw128/train")
    parser.add_argument("--batch", type=int, default=4, help="global batch")
    parser.add_argument("--devices", type=int, default=2, help="logical CPU devices")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--losses", default="rgb,edge,lc,id")
    args = parser.parse_args()
    _, batch = data.load_eval_set(sorted(glob.glob(os.path.join(args.data, "*")))[:args.batch])
    print(machine())
    rates = {s: steps_per_second(args, s, batch) for s in ("none", "mirrored")}
    print(f"global batch {args.batch}, losses {args.losses}: one device "
          f"{rates['none']:.3f} steps/s; mirrored over {args.devices} logical CPU devices "
          f"{rates['mirrored']:.3f} steps/s ({rates['mirrored'] / rates['none']:.2f}x)")


if __name__ == "__main__":
    main()
