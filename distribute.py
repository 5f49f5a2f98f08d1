"""Data-parallel training on TensorFlow's own tf.distribute, in the TF1 graph (issue 16).

--strategy mirrored: MirroredStrategy over this host's devices (the GPUs of --gpu_ids, or
--cpu_devices logical CPUs). --strategy multi_worker: MultiWorkerMirroredStrategy over the hosts
of TF_CONFIG; each process starts its tf.distribute.Server and runs its session on it.

Every replica builds the same train graph (train.build_train_graph: generator, losses, FaceNet,
discriminator) on its shard of the batch; the tf.compat.v1 optimisers all-reduce the gradients
through the strategy. Variables are MirroredVariables under their usual names, so a checkpoint
reads the same whatever strategy wrote it. Workers other than the chief write into a temporary
folder deleted at exit (as Keras's multi-worker callbacks do); the run folder is the chief's.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from typing import Callable, NamedTuple

import numpy as np

from tf1 import has_gpu, session_config, tf

STRATEGIES = ("none", "mirrored", "multi_worker")
# how Cluster.replicate joins the replicas' TrainGraph fields (the others: replica 0's)
INPUT_FIELDS = ("lr", "hr", "edge_targets", "parsing_targets", "training")
TRAIN_OPS = ("train_g", "train_g_gan", "train_d")
LOSSES = ("terms", "total", "terms_gan", "total_gan", "d_loss")
# TensorFlow errors that mean a peer worker is gone or unreachable (or a step outlived
# --step_timeout): the run cannot go on without it
LOST_WORKER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                      tf.errors.AbortedError, tf.errors.CancelledError,
                      tf.errors.InternalError)


class LostWorker(RuntimeError):
    """A peer worker died or hangs: the collectives of a step cannot complete."""
    hint = "restart every worker with --continue_train"

    @classmethod
    def of(cls, err: tf.errors.OpError) -> LostWorker:
        peer = re.search(r"remote target (/job:\w+/replica:\d+/task:\d+)", str(err))
        return cls(f"lost contact with {peer.group(1) if peer else 'a worker of the cluster'} "
                   f"({type(err).__name__}; a session call may wait --step_timeout seconds)")


class Task(NamedTuple):
    kind: str | None   # chief or worker (None without TF_CONFIG)
    rank: int          # 0 for the chief, then the workers in order
    chief: bool        # the task of type chief, else worker 0 (tf.distribute's rule)
    workers: int       # chief and workers


def task() -> Task:
    """This process's task in the cluster of TF_CONFIG."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    cluster, me = config.get("cluster", {}), config.get("task", {})
    kind, index, chiefs = me.get("type"), int(me.get("index", 0)), len(cluster.get("chief", []))
    rank = index + (chiefs if kind == "worker" else 0)
    return Task(kind, rank, rank == 0, chiefs + len(cluster.get("worker", [])))


def check_options(opt) -> None:
    """ValueError for a --strategy that cannot start (multi_worker without a TF_CONFIG naming
    this task, a global batch that does not split evenly); applies --lr_scale_batch."""
    if opt.strategy == "multi_worker" and task().kind not in ("chief", "worker"):
        raise ValueError("--strategy multi_worker needs TF_CONFIG naming the cluster and this "
                         "task, e.g. '{\"cluster\": {\"worker\": [\"host1:2222\", "
                         "\"host2:2222\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}' "
                         "(docs/training.md, \"Many GPUs, many hosts\")")
    if opt.ema_decay and opt.strategy != "none":
        raise ValueError("--ema_decay runs with --strategy none only: the average is updated "
                         "outside the replicas' step")
    parts = {"none": 1, "mirrored": gpu_count(opt) or opt.cpu_devices,
             "multi_worker": task().workers}[opt.strategy]
    if opt.batchSize % parts:
        raise ValueError(f"--batchSize {opt.batchSize} does not split over the {parts} "
                         f"{'workers' if opt.strategy == 'multi_worker' else 'devices'} of "
                         f"--strategy {opt.strategy}: make it a multiple of {parts}")
    if opt.lr_scale_batch:   # the linear-scaling rule (Goyal et al. 2017)
        factor = opt.batchSize / opt.lr_scale_batch
        opt.learning_rate *= factor
        print(f"--lr_scale_batch {opt.lr_scale_batch}: learning rate x {factor:g} = "
              f"{opt.learning_rate:g} for the global batch of {opt.batchSize}")


def gpu_count(opt) -> int:
    """The GPUs of --gpu_ids, 0 without a visible GPU."""
    return sum(1 for t in opt.gpu_ids.split(",") if t.strip()) if has_gpu() else 0


def writes_run_dir(opt) -> bool:
    """False for a non-chief worker of --strategy multi_worker."""
    return opt.strategy != "multi_worker" or task().chief


def worker_run_dir(opt):
    """opt for this process: a non-chief worker writes into a temporary folder (removed by
    `finish`), and reads the chief's run folder only to resume."""
    if not writes_run_dir(opt):
        opt.run_dir = tempfile.mkdtemp(prefix=f"worker{task().rank}_")
    return opt


def finish(opt) -> None:
    if not writes_run_dir(opt):
        shutil.rmtree(opt.run_dir, ignore_errors=True)


class Cluster:
    """The strategy, and the session target and config of this process."""

    def __init__(self, opt):
        config = session_config(opt.precision, opt.gpu_ids)
        self.target = ""
        if opt.strategy == "mirrored":
            devices = local_devices(opt)
            self.strategy = tf.distribute.MirroredStrategy(devices)
            # a Session makes its CPU devices from its own config, not from tf.config's
            # logical devices (those are the eager context's)
            config.device_count["CPU"] = max(1, sum("cpu" in d for d in devices))
        else:
            resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
            self.strategy = tf.distribute.experimental.MultiWorkerMirroredStrategy(
                cluster_resolver=resolver)
            config = self.strategy.update_config_proto(config)
            # every blocking op (a collective waiting for a dead peer) fails after this
            config.operation_timeout_in_ms = int(opt.step_timeout * 1000)
            self.server = tf.distribute.Server(resolver.cluster_spec(), resolver.task_type,
                                               resolver.task_id, config=config)
            self.target = self.server.target
        self.config = config
        me = task() if opt.strategy == "multi_worker" else Task(None, 0, True, 1)
        self.workers, self.worker = me.workers, me.rank
        self.replicas = len(self.strategy.extended.worker_devices)   # on this worker

    def session(self) -> tf.Session:
        return tf.Session(self.target, config=self.config)

    def replicate(self, build: Callable, inputs: tuple):
        """build(inputs) (train.build_train_graph) on every replica, each on its shard of the
        local batch `inputs` (train.train_inputs; the last, `training`, is shared). Returns
        build's TrainGraph with the global `inputs`, the losses averaged over the local
        replicas, the outputs concatenated in batch order, the train ops grouped, and the
        variables (mirrored) as replica 0 sees them."""
        n, batched, training = self.replicas, inputs[:-1], inputs[-1]
        shards = [split(x, n) for x in tf.nest.flatten(batched)]
        graphs = [None] * n

        def on_shard():
            ctx = tf.distribute.get_replica_context()
            local = tf.get_static_value(ctx.replica_id_in_sync_group) % n
            graphs[local] = build((*tf.nest.pack_sequence_as(batched, [s[local] for s in shards]),
                                   training))

        with self.strategy.scope():
            self.strategy.extended.call_for_each_replica(on_shard)
        fields = {name: combine(name, [g._asdict()[name] for g in graphs])
                  for name in graphs[0]._fields}
        return graphs[0]._replace(**{**fields, **dict(zip(INPUT_FIELDS, inputs))})


def combine(name: str, values: list):
    """One value of a TrainGraph field from its per-replica values."""
    if values[0] is None:
        return None
    if name in TRAIN_OPS:
        return tf.group(*values)
    if name == "sr":
        return tf.nest.map_structure(lambda *x: None if x[0] is None else tf.concat(x, 0),
                                     *values)
    if name in LOSSES:
        return tf.nest.map_structure(lambda *x: tf.add_n(x) / len(x), *values)
    return values[0]


def split(x, n: int) -> list:
    """x cut along the batch into n shards whose sizes differ by at most one (np.array_split's
    rule), so a validation batch of any size runs."""
    size = tf.shape(x)[0]
    sizes = size // n + tf.cast(tf.range(n) < size % n, tf.int32)
    return tf.split(x, sizes, num=n) if n > 1 else [x]


def local_devices(opt) -> list[str]:
    """The mirrored replicas' devices: the GPUs of --gpu_ids (numbered as the session sees
    them), else --cpu_devices logical CPUs."""
    gpus = gpu_count(opt)
    if gpus:
        return [f"/gpu:{i}" for i in range(gpus)]
    return [f"/cpu:{i}" for i in range(opt.cpu_devices)]


def fingerprint(sess: tf.Session) -> str:
    """A digest of every variable's value, to see that workers hold the same weights."""
    digest = hashlib.sha256()
    variables = sorted(tf.global_variables(), key=lambda v: v.op.name)
    for v, value in zip(variables, sess.run(variables)):   # one call: each is a round trip
        digest.update(v.op.name.encode() + np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()[:16]
