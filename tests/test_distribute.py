"""Data-parallel training on tf.distribute (distribute.py) on real faces: one MirroredStrategy
step over 2 logical CPU devices against the single-device step; two MultiWorkerMirroredStrategy
workers on 127.0.0.1 that end with the same weights, whose checkpoint test.py reads; a worker
killed mid-run stops the run, which resumes with --continue_train."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import data
import distribute
from networks import generators
import test as test_script
from conftest import ROOT, copy_faces, log_steps, train_args
from options.test_options import TestOptions
from options.train_options import TrainOptions
from tf1 import session_config, tf
import train

START_SECONDS = 120   # a worker's graph build, first step and a few more, at most


def one_step(opt, batch: data.Example, cluster: distribute.Cluster | None) -> dict:
    """Losses of one generator step from the seed-0 init, and every variable after it, by
    name; each replica's copy under name@i."""
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        if cluster:
            g = cluster.replicate(lambda inputs: train.build_train_graph(opt, inputs),
                                  train.train_inputs(opt))
            sess = cluster.session()
        else:
            g = train.build_train_graph(opt)
            sess = tf.Session(config=session_config())
        with sess:
            sess.run(tf.global_variables_initializer())
            terms, _ = sess.run([g.terms, g.train_g], train.feed(g, batch))
            values = {v.op.name: sess.run(v) for v in tf.global_variables()}
            if cluster:
                local = cluster.strategy.experimental_local_results
                values.update({f"{v.op.name}@{i}": sess.run(x) for v in tf.global_variables()
                               for i, x in enumerate(local(v))})
    return {"losses": terms, "variables": values}


@pytest.mark.cpu_numbers
def test_mirrored_step_equals_the_single_device_step(train_paths):
    """Global batch 4 on 2 CPU replicas of 2 faces each updates G and its Adam moments as
    the single-device step on the 4 faces. The Adam moments hold the gradients, which Adam's
    first step itself hides: it moves each weight by lr x sign(g)."""
    _, batch = data.load_eval_set(train_paths[:4])
    args = ["--losses", "rgb,edge,lc", "--batchSize", "4"]
    single = one_step(TrainOptions().parse(args, verbose=False), batch, None)
    opt = TrainOptions().parse(args + ["--strategy", "mirrored", "--cpu_devices", "2"],
                               verbose=False)
    cluster = distribute.Cluster(opt)
    assert cluster.strategy.num_replicas_in_sync == 2
    mirrored = one_step(opt, batch, cluster)

    for name, value in single["losses"].items():
        assert mirrored["losses"][name] == pytest.approx(value, rel=1e-5), name
    variables = single["variables"]
    assert {n for n in mirrored["variables"] if "@" not in n} == set(variables)
    assert "generator/Conv1/w/Adam_1" in variables
    for name, value in variables.items():
        scale = np.abs(value).max()
        # Adam's first step moves a weight by lr g / (|g| + eps): where |g| is within 100 eps of
        # 0 that move follows the rounding of g, which the replicas' split sum and the CPU's
        # kernels change (under ONEDNN_MAX_CPU_ISA=AVX2, 1 of 2.4M Step2_1/w weights moved by
        # 0.12 lr against the single device); there a weight agrees to within the step, lr
        value = np.asarray(value)
        moment = np.asarray(variables.get(f"{name}/Adam", np.full(value.shape, np.inf)))
        tiny = np.abs(moment) / (1 - 0.9) < 100 * 1e-8
        for copy in (name, f"{name}@0", f"{name}@1"):
            got = np.asarray(mirrored["variables"][copy])
            np.testing.assert_allclose(got[~tiny], value[~tiny], rtol=1e-3,
                                       atol=1e-4 * scale + 1e-12, err_msg=copy)
            assert np.all(np.abs(got[tiny] - value[tiny]) <= opt.learning_rate), copy
    # the replicas hold the same weights, bit for bit
    for name in variables:
        np.testing.assert_array_equal(mirrored["variables"][f"{name}@0"],
                                      mirrored["variables"][f"{name}@1"], err_msg=name)


def test_facenet_runs_on_every_replica():
    """L_id's frozen FaceNet is imported once per replica, on that replica's device."""
    opt = TrainOptions().parse(["--losses", "rgb,id", "--strategy", "mirrored",
                                "--cpu_devices", "2", "--batchSize", "2"], verbose=False)
    cluster = distribute.Cluster(opt)
    with tf.Graph().as_default() as graph:
        cluster.replicate(lambda inputs: train.build_train_graph(opt, inputs),
                          train.train_inputs(opt))
        convs = [op for op in graph.get_operations()
                 if op.type == "Conv2D" and "facenet/InceptionResnetV1/Conv2d_1a" in op.name]
    assert sorted((op.name.split("facenet")[0], op.device[-5:]) for op in convs) == [
        ("", "CPU:0"), ("replica_1/", "CPU:1")]


def test_strategy_options_stop_early_or_scale_the_rate(dataset, tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(SystemExit, match="--strategy multi_worker needs TF_CONFIG"):
        train.main(train_args(dataset, tmp_path, "--strategy", "multi_worker"))
    with pytest.raises(SystemExit, match="--batchSize 2 does not split over the 3 devices"):
        train.main(train_args(dataset, tmp_path, "--strategy", "mirrored", "--cpu_devices", "3"))
    assert not (tmp_path / "run").exists()
    opt = TrainOptions().parse(["--batchSize", "64", "--lr_scale_batch", "16"], verbose=False)
    distribute.check_options(opt)
    assert opt.learning_rate == pytest.approx(4 * 1e-4)


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(faces: Path, checkpoint_path: Path, *extra: str) -> list[subprocess.Popen]:
    """Two train.py workers of one MultiWorkerMirroredStrategy cluster on 127.0.0.1, at global
    batch 4; worker 0 is the chief. Output in checkpoint_path/worker{i}.{out,err}."""
    hosts = [f"127.0.0.1:{p}" for p in free_ports(2)]
    workers = []
    for i in range(2):
        env = {**os.environ, "TF_CONFIG": f'{{"cluster": {{"worker": {hosts!r}}}, "task": '
                                          f'{{"type": "worker", "index": {i}}}}}'.replace("'", '"')}
        out = open(checkpoint_path / f"worker{i}.out", "w")
        err = open(checkpoint_path / f"worker{i}.err", "w")
        workers.append(subprocess.Popen(
            [sys.executable, "train.py", "--train_path", str(faces / "train"), "--test_path",
             str(faces / "val"), "--checkpoint_path", str(checkpoint_path), "--save_path", "run",
             "--batchSize", "4", "--val_size", "2", "--print_freq", "1", "--losses",
             "rgb,edge,lc", "--loader_threads", "1", "--strategy", "multi_worker",
             "--step_timeout", "60", *extra], cwd=ROOT, env=env, stdout=out, stderr=err))
    return workers


def wait_all(workers: list[subprocess.Popen], seconds: float) -> list[int]:
    deadline = time.time() + seconds
    try:
        return [w.wait(max(1.0, deadline - time.time())) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()


def fingerprints(checkpoint_path: Path) -> list[str]:
    return [re.search(r"weights fingerprint (\w+)", (checkpoint_path / f"worker{i}.out")
                      .read_text()).group(1) for i in range(2)]


@pytest.fixture
def faces(tmp_path, train_paths, val_paths) -> Path:
    copy_faces(train_paths[:8], tmp_path / "faces" / "train")
    copy_faces(val_paths[:2], tmp_path / "faces" / "val")
    return tmp_path / "faces"


def sr_of_checkpoint(prefix: str, lr: np.ndarray) -> np.ndarray:
    """The generator of the full checkpoint `prefix` on `lr`, restored by name alone."""
    with tf.Graph().as_default():
        opt = TrainOptions().parse([], verbose=False)
        x = tf.placeholder(tf.float32, [None, 16, 16, 3])
        sr = generators.build(opt, x).rgb
        with tf.Session() as sess:
            tf.train.Saver(tf.global_variables()).restore(sess, prefix)
            return sess.run(sr, {x: lr})


def test_two_workers_train_in_step_and_test_py_reads_the_chief(faces, tmp_path):
    workers = start_workers(faces, tmp_path, "--niter", "3", "--save_freq", "3",
                            "--val_freq", "3")
    assert wait_all(workers, START_SECONDS) == [0, 0], (tmp_path / "worker1.err").read_text()
    first, second = fingerprints(tmp_path)
    assert first == second                     # every variable, Adam moments included
    run = tmp_path / "run"
    assert log_steps(run) == [1, 2, 3]         # the chief's log, written once
    assert tf.train.latest_checkpoint(str(run)).endswith("model.ckpt-3")
    # worker 1 wrote into a temporary folder, gone now
    elsewhere = re.search(r"saved iteration 3 to (\S+)", (tmp_path / "worker1.out").read_text())
    assert elsewhere.group(1) != str(run) and not os.path.exists(elsewhere.group(1))

    # the chief's G_weight.ckpt (its one validation, iteration 3) in a single-process test.py
    _, val = data.load_eval_set(sorted(str(p) for p in (faces / "val").iterdir()))
    lr_dir = tmp_path / "lr"
    lr_dir.mkdir()
    for i, lr in enumerate(val.lr):
        cv2.imwrite(str(lr_dir / f"face{i}.png"), cv2.cvtColor(lr.astype(np.uint8),
                                                               cv2.COLOR_RGB2BGR))
    test_script.main(["--weight_path", str(run), "--test_path", str(lr_dir), "--result_dir",
                      str(tmp_path / "result"), "--no_figures"])
    expected = np.clip(np.round(sr_of_checkpoint(str(run / "model.ckpt-3"),
                                                 val.lr.astype(np.uint8).astype(np.float32))),
                       0, 255)
    for i in range(len(val.lr)):
        got = cv2.cvtColor(cv2.imread(str(tmp_path / "result" / f"face{i}_SR.png")),
                           cv2.COLOR_BGR2RGB)
        assert np.abs(got.astype(float) - expected[i]).max() <= 1


def test_a_lost_worker_stops_the_run_and_continue_train_resumes(faces, tmp_path):
    workers = start_workers(faces, tmp_path, "--niter", "40", "--save_freq", "2",
                            "--val_freq", "40")
    run = tmp_path / "run"
    deadline = time.time() + START_SECONDS
    while not (run / "model.ckpt-2.index").exists() and time.time() < deadline:
        time.sleep(0.5)
    workers[1].send_signal(signal.SIGKILL)
    codes = wait_all(workers, 90)
    chief_err = (tmp_path / "worker0.err").read_text()
    assert codes[0] == 1 and "stopped: lost contact with /job:worker/replica:0/task:1" in chief_err, chief_err
    kept = int(re.search(r"model\.ckpt-(\d+), the last good checkpoint", chief_err).group(1))
    assert kept >= 2 and "stopped: lost contact" in (run / "loss_log.txt").read_text()

    workers = start_workers(faces, tmp_path, "--niter", str(kept + 2), "--save_freq", "2",
                            "--val_freq", "40", "--continue_train")
    assert wait_all(workers, START_SECONDS) == [0, 0], (tmp_path / "worker1.err").read_text()
    assert f"resumed from iteration {kept}" in (run / "loss_log.txt").read_text()
    assert log_steps(run)[-2:] == [kept + 1, kept + 2]
    assert tf.train.latest_checkpoint(str(run)).endswith(f"model.ckpt-{kept + 2}")
    first, second = fingerprints(tmp_path)
    assert first == second


# the commit before --strategy: its train.py is the single-device code this branch must keep
BEFORE_STRATEGY = "23a4c86"
# run in a source tree: per model, the graph's digest; EIPNet's losses of two steps from the
# seed-0 init (JEANet: its batch norm's moving averages are created with an aggregation now)
SINGLE_DEVICE_RUN = """
import hashlib, json, sys
import data, train
from options.train_options import TrainOptions
from tf1 import session_config, tf
_, batch = data.load_eval_set(sys.argv[1:])
runs = {}
for model in ("eipnet", "jeanet"):
    opt = TrainOptions().parse(["--model", model, "--losses", "rgb,edge,lc,l1"], verbose=False)
    with tf.Graph().as_default() as graph:
        tf.set_random_seed(0)
        g = train.build_train_graph(opt)
        digest = hashlib.sha256(graph.as_graph_def().SerializeToString(deterministic=True))
        runs[model] = {"graph": digest.hexdigest()}
        if model == "eipnet":
            with tf.Session(config=session_config()) as sess:
                sess.run(tf.global_variables_initializer())
                runs[model]["losses"] = [sess.run([g.total, g.train_g],
                                                  train.feed(g, batch))[0].item() for _ in "ab"]
print(json.dumps(runs))
"""


def single_device_run(tree: Path, paths: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", SINGLE_DEVICE_RUN, *paths], cwd=tree,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return json.loads(out.splitlines()[-1])


def test_strategy_none_is_the_graph_before_it(tmp_path, train_paths):
    """--strategy none builds, node for node, the graph of the code before --strategy existed,
    and its steps give the same losses, bit for bit (that code comes from git history)."""
    has_commit = subprocess.run(["git", "cat-file", "-e", BEFORE_STRATEGY], cwd=ROOT,
                                capture_output=True).returncode == 0
    if not has_commit:
        pytest.skip(f"not a git checkout holding {BEFORE_STRATEGY}")
    archive = subprocess.run(["git", "archive", BEFORE_STRATEGY], cwd=ROOT, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive, check=True)
    before, now = (single_device_run(tree, train_paths[:2]) for tree in (tmp_path, ROOT))
    assert now == before
    assert before["eipnet"]["losses"][1] < before["eipnet"]["losses"][0]
