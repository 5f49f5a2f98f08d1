"""train.py never loses a run: NaN updates, damaged or moved checkpoints, leftovers of killed
saves, signals. Tiny runs (batch 2, a few iterations) on real lfw128 faces; the kill tests
start train.py in a process group of its own, as a shell with `set -m` does."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import checkpoints
import data
import model
import test as test_script
from conftest import ROOT, log_steps, train_args
from tf1 import tf
import train


@pytest.fixture(scope="module")
def base_run(dataset, tmp_path_factory) -> Path:
    """A finished 4-iteration run to copy: full checkpoints at 2 and 4, G_weight.ckpt."""
    root = tmp_path_factory.mktemp("base")
    train.main(train_args(dataset, root, "--niter", "4", "--save_freq", "2", "--val_freq", "2"))
    return root / "run"


@pytest.fixture(scope="module")
def ema_base_run(dataset, tmp_path_factory) -> Path:
    """base_run with --ema_decay 0.9: G_weight_ema.ckpt beside G_weight.ckpt."""
    root = tmp_path_factory.mktemp("ema_base")
    train.main(train_args(dataset, root, "--niter", "4", "--save_freq", "2", "--val_freq", "2",
                          "--ema_decay", "0.9"))
    return root / "run"


def copy_of(base_run: Path, tmp_path: Path) -> Path:
    """A copy of the base run whose index names the copy's files, as if it had run there."""
    run = Path(shutil.copytree(base_run, tmp_path / "run"))
    index = run / "checkpoint"
    index.write_text(index.read_text().replace(f"{base_run}/", ""))
    return run


def resume(dataset, tmp_path, niter: int, *extra: str) -> None:
    train.main(train_args(dataset, tmp_path, "--continue_train", "--niter", str(niter),
                          "--val_freq", "100", *extra))


def full_steps(run: Path) -> list[int]:
    """The iterations of the full checkpoints in `run` that have an index, in order."""
    return sorted(int(p.name[len("model.ckpt-"):-len(".index")])
                  for p in run.glob("model.ckpt-*.index"))


def validation(run: Path, step: int) -> str:
    """The line loss_log.txt gives the validation at `step`, after "val step N:"."""
    return (run / "loss_log.txt").read_text().split(f"val step {step}:")[1].splitlines()[0]


def tensors(prefix) -> dict:
    """Every tensor of a checkpoint, read in full (raises if its index or data is damaged)."""
    reader = tf.train.NewCheckpointReader(str(prefix))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def poison_loader(monkeypatch) -> None:
    """Every training batch carries one NaN pixel, as a corrupt image would."""
    real_next = data.BatchLoader.next

    def poisoned(self):
        batch = real_next(self)
        batch.hr[0, 0, 0, 0] = np.nan
        return batch
    monkeypatch.setattr(data.BatchLoader, "next", poisoned)


def test_nan_weights_are_never_saved(base_run, dataset, tmp_path):
    """Item 1: a step whose own loss is finite but whose update leaves weights with a NaN loss
    is neither saved nor pointed at; a sane resume goes on from the last good checkpoint."""
    run = copy_of(base_run, tmp_path)
    with pytest.raises(SystemExit, match="non-finite weights or loss after iteration 5, which "
                                         "was not saved.*model.ckpt-4, the last good"):
        resume(dataset, tmp_path, 10, "--learning_rate", "1e3", "--save_freq", "1")
    assert "step 5:" in (run / "loss_log.txt").read_text()   # step 5 ran and reported finite
    assert full_steps(run) == [2, 4]
    assert tf.train.latest_checkpoint(str(run)).endswith("model.ckpt-4")
    for step in (2, 4):
        assert all(np.all(np.isfinite(t)) for t in tensors(run / f"model.ckpt-{step}").values())
    resume(dataset, tmp_path, 6, "--save_freq", "2")
    assert tf.train.latest_checkpoint(str(run)).endswith("model.ckpt-6")
    assert log_steps(run)[-2:] == [5, 6]


def snapshot(run: Path) -> dict:
    return {f: (run / f).read_bytes() for f in os.listdir(run) if (run / f).is_file()}


def test_new_run_refuses_a_folder_with_a_damaged_index(base_run, dataset, tmp_path):
    """Item 2: the guard reads the files, not the `checkpoint` index: a cut index, or a folder
    holding only G_weight.ckpt, still stops a new run before it writes anything."""
    run = copy_of(base_run, tmp_path)
    index = (run / "checkpoint").read_bytes()
    (run / "checkpoint").write_bytes(index[:len(index) // 3])
    before = snapshot(run)
    with pytest.raises(SystemExit, match="already holds a training run .*G_weight.ckpt.index.*"
                                         "model.ckpt-4.index.*opt.txt.*--continue_train"):
        train.main(train_args(dataset, tmp_path, "--niter", "2", "--save_freq", "2"))
    assert snapshot(run) == before

    released = tmp_path / "released" / "run"
    released.mkdir(parents=True)
    for f in run.glob("G_weight.ckpt.*"):
        shutil.copy(f, released)
    with pytest.raises(SystemExit, match="holds trained weights .* choose another --save_path"):
        train.main(train_args(dataset, released.parent, "--niter", "2", "--save_freq", "2"))
    assert sorted(os.listdir(released)) == ["G_weight.ckpt.data-00000-of-00001",
                                            "G_weight.ckpt.index"]


def test_a_folder_holding_only_an_averaged_g_is_refused(ema_base_run, dataset, tmp_path):
    """G_weight_ema.ckpt marks a run folder as G_weight.ckpt does: a new run (or a resume) there
    stops naming --pretrained, and the averaged weights stay as they were."""
    averaged = tmp_path / "run"
    averaged.mkdir()
    for f in ema_base_run.glob("G_weight_ema.*"):
        shutil.copy(f, averaged)
    before = snapshot(averaged)
    for extra in ([], ["--continue_train"]):
        with pytest.raises(SystemExit, match=r"holds trained weights \(G_weight_ema.ckpt.data"
                                             r".*--pretrained"):
            train.main(train_args(dataset, tmp_path, "--niter", "2", "--ema_decay", "0.9",
                                  *extra))
    assert snapshot(averaged) == before


def test_resume_skips_a_damaged_newest_checkpoint(base_run, dataset, tmp_path, capsys):
    """Item 3: the newest checkpoint's data cut in half is named, and the run resumes from
    the newest complete one (2), then saves a good 4 over the damaged one."""
    run = copy_of(base_run, tmp_path)
    data_file = run / "model.ckpt-4.data-00000-of-00001"
    data_file.write_bytes(data_file.read_bytes()[:data_file.stat().st_size // 2])
    resume(dataset, tmp_path, 4, "--save_freq", "2")
    assert f"warning: {data_file} is missing or damaged" in capsys.readouterr().out
    log = (run / "loss_log.txt").read_text()
    assert "resumed from iteration 2 (model.ckpt-2)" in log
    assert log_steps(run)[-2:] == [3, 4]
    assert tensors(run / "model.ckpt-4")["global_step"] == 4
    assert tf.train.latest_checkpoint(str(run)).endswith("model.ckpt-4")


def test_resume_reads_the_files_when_the_index_is_garbage(base_run, dataset, tmp_path):
    """Item 3: an index of random bytes (which TensorFlow cannot parse) does not hide the
    newest complete checkpoint on disk; the next save writes a good index."""
    run = copy_of(base_run, tmp_path)
    (run / "checkpoint").write_bytes(np.random.default_rng(0).bytes(200))
    resume(dataset, tmp_path, 6, "--save_freq", "2")
    assert "resumed from iteration 4 (model.ckpt-4)" in (run / "loss_log.txt").read_text()
    assert log_steps(run)[-2:] == [5, 6]
    assert tf.train.latest_checkpoint(str(run)).endswith("model.ckpt-6")


def test_resume_with_another_model_stops_and_deletes_nothing(base_run, dataset, tmp_path):
    """A complete checkpoint of another model is not taken for a damaged one: one line names
    it, and nothing in the run folder is deleted (the tidying waits for a restore)."""
    run = copy_of(base_run, tmp_path)
    (run / "model.ckpt-6.index.tempstate7734738002659615208").write_bytes(b"partial")
    before = sorted(os.listdir(run))
    with pytest.raises(SystemExit, match=r"error: --continue_train: .*model.ckpt-4 does not fit "
                                         r"--model jeanet: .*Pass the --model and --scale it was trained"):
        resume(dataset, tmp_path, 6, "--model", "jeanet", "--max_to_keep", "1")
    assert sorted(os.listdir(run)) == before


@pytest.mark.parametrize("ema", [True, False], ids=["EMA left out", "EMA added"])
def test_a_resume_that_would_drop_or_lacks_state_stops_and_changes_nothing(
        ema, base_run, ema_base_run, dataset, tmp_path):
    """A run trained with --ema_decay, resumed without it, would restore G and go on, saving
    checkpoints without the average; one trained without it has no average to restore. Both
    stop in one line naming the fix, and the run folder (opt.txt included) stays as it was."""
    run = copy_of(ema_base_run if ema else base_run, tmp_path)
    before = snapshot(run)
    message = (r"model.ckpt-4 holds what these options do not train \(generator/\S+/"
               r"ExponentialMovingAverage.*\): "
               r"resume with the --losses and --ema_decay it was trained with" if ema else
               r"model.ckpt-4 does not fit this model: resume with the --model, --losses and "
               r"--ema_decay it was trained with")
    with pytest.raises(SystemExit, match=message):
        resume(dataset, tmp_path, 6, *([] if ema else ["--ema_decay", "0.9"]))
    assert snapshot(run) == before


def test_max_to_keep_0_keeps_every_checkpoint_across_a_resume(base_run, dataset, tmp_path):
    """--max_to_keep 0 keeps all, as TensorFlow's Saver: the resume's tidying deletes none."""
    run = copy_of(base_run, tmp_path)
    resume(dataset, tmp_path, 6, "--save_freq", "1", "--max_to_keep", "0")
    assert full_steps(run) == [2, 4, 5, 6]


def start(dataset, tmp_path, *extra: str) -> subprocess.Popen:
    """train.py in a new session: its own process group, as a shell with `set -m` starts it."""
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"),
                             *train_args(dataset, tmp_path, "--niter", "1000", "--val_freq",
                                         "1000", "--loader_threads", "1", *extra)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    end = time.time() + timeout
    while not path.exists():
        if proc.poll() is not None or time.time() > end:
            proc.kill()
            pytest.fail(f"{path} never appeared:\n{proc.communicate()[0]}")
        time.sleep(0.2)


def stop(proc: subprocess.Popen, sig: int) -> str:
    os.killpg(proc.pid, sig)
    return proc.communicate(timeout=120)[0]


def test_signals_save_and_exit_130_143_and_kill9_loses_at_most_save_freq(dataset, tmp_path):
    """Item 8: Ctrl-C and SIGTERM save the iteration they stopped at and exit 130 and 143, as
    a shell reports them; SIGKILL loses at most --save_freq iterations."""
    run = tmp_path / "run"
    proc = start(dataset, tmp_path, "--save_freq", "3")
    wait_for(run / "model.ckpt-3.index", proc)
    out = stop(proc, signal.SIGINT)
    assert proc.returncode == 130 and "interrupted: saving" in out, out
    saved = full_steps(run)[-1]   # the step under way when the signal came may be unlogged
    assert saved >= max(3, log_steps(run)[-1]) and (run / "G_weight.ckpt.index").exists()
    assert f"interrupted by SIGINT: saved iteration {saved}" in (run / "loss_log.txt").read_text()

    proc = start(dataset, tmp_path, "--save_freq", "2", "--continue_train")
    wait_for(run / f"model.ckpt-{saved + 2 - saved % 2}.index", proc)
    out = stop(proc, signal.SIGTERM)
    assert proc.returncode == 143 and "interrupted: saving" in out, out
    saved = full_steps(run)[-1]
    assert f"interrupted by SIGTERM: saved iteration {saved}" in (run / "loss_log.txt").read_text()
    assert tf.train.latest_checkpoint(str(run)).endswith(f"model.ckpt-{saved}")

    proc = start(dataset, tmp_path, "--save_freq", "2", "--continue_train")
    wait_for(run / f"model.ckpt-{saved + 4 - saved % 2}.index", proc)
    stop(proc, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    reached, kept = log_steps(run)[-1], full_steps(run)[-1]
    assert reached - 2 <= kept <= reached
    resume(dataset, tmp_path, kept + 1)
    assert f"resumed from iteration {kept}" in (run / "loss_log.txt").read_text()
    assert log_steps(run)[-1] == kept + 1


def test_non_finite_loss_keeps_the_last_checkpoint(base_run, dataset, tmp_path, monkeypatch):
    """A NaN loss while resuming stops the run at that iteration, naming the checkpoint
    kept, which stays the one the index points at."""
    run = copy_of(base_run, tmp_path)
    poison_loader(monkeypatch)
    with pytest.raises(SystemExit, match="non-finite loss at iteration 5.*model.ckpt-4, the "
                                         "last good checkpoint .* is kept"):
        resume(dataset, tmp_path, 6)
    assert tf.train.latest_checkpoint(str(run)).endswith("model.ckpt-4")
    assert full_steps(run) == [2, 4]


def test_nan_at_the_first_iteration_says_nothing_was_saved(dataset, tmp_path, monkeypatch):
    """Item 9: a NaN at iteration 1 of a new run claims no checkpoint, records the stop in
    loss_log.txt, and --continue_train then starts the run at iteration 0."""
    poison_loader(monkeypatch)
    with pytest.raises(SystemExit) as stopped:
        train.main(train_args(dataset, tmp_path, "--niter", "2", "--save_freq", "2"))
    message = str(stopped.value.code)
    assert "non-finite loss at iteration 1" in message and "no checkpoint was saved" in message
    assert "last good" not in message
    run = tmp_path / "run"
    assert (run / "loss_log.txt").read_text().startswith("stopped: non-finite loss at iteration 1")
    assert not full_steps(run)
    monkeypatch.undo()
    resume(dataset, tmp_path, 2, "--save_freq", "2")
    assert log_steps(run) == [1, 2] and full_steps(run) == [2]


def test_resume_removes_leftovers_and_surplus_checkpoints(base_run, dataset, tmp_path, capsys):
    """Item 10: what a kill during a save leaves (TensorFlow's .tempstate files, a data file
    whose index was never written, a temporary index) and the checkpoints beyond
    --max_to_keep are deleted at start, each named; the saver then keeps --max_to_keep."""
    run = copy_of(base_run, tmp_path)
    part = (run / "model.ckpt-4.data-00000-of-00001").read_bytes()[:100_000]
    leftovers = ["model.ckpt-6.data-00000-of-00001.tempstate8868810633588309769",
                 "model.ckpt-6.index.tempstate7734738002659615208",
                 "model.ckpt-5.data-00000-of-00001",
                 "checkpoint.tmp0c1d2e3f40516273849a5b6c7d8e9f00"]
    for name in leftovers:
        (run / name).write_bytes(part)
    resume(dataset, tmp_path, 6, "--save_freq", "1", "--max_to_keep", "1")
    printed = capsys.readouterr().out
    for name in leftovers + ["model.ckpt-2.index", "model.ckpt-2.data-00000-of-00001"]:
        assert f"removed {run / name}" in printed
    assert sorted(f for f in os.listdir(run) if f.startswith("model.ckpt")) == [
        "model.ckpt-6.data-00000-of-00001", "model.ckpt-6.index"]
    assert not [f for f in os.listdir(run) if "tmp" in f or "tempstate" in f]


def test_moved_run_folder_resumes(dataset, tmp_path):
    """Item 11: the index holds paths relative to the run folder, so a run saved under an
    absolute --checkpoint_path resumes after the folder is moved."""
    train.main(train_args(dataset, tmp_path / "a", "--niter", "2", "--save_freq", "2"))
    index = (tmp_path / "a" / "run" / "checkpoint").read_text()
    assert 'model_checkpoint_path: "model.ckpt-2"' in index and str(tmp_path) not in index
    (tmp_path / "b").mkdir()
    os.rename(tmp_path / "a" / "run", tmp_path / "b" / "run")
    resume(dataset, tmp_path / "b", 3)
    run = tmp_path / "b" / "run"
    assert "resumed from iteration 2" in (run / "loss_log.txt").read_text()
    assert tf.train.latest_checkpoint(str(run)).endswith("model.ckpt-3")


def test_resume_is_written_in_the_log(base_run, dataset, tmp_path):
    """Item 12: loss_log.txt says where a resume restarted, so repeated iterations read
    as a resume."""
    run = copy_of(base_run, tmp_path)
    resume(dataset, tmp_path, 5)
    lines = (run / "loss_log.txt").read_text().splitlines()
    at = lines.index("resumed from iteration 4 (model.ckpt-4)")
    assert lines[at - 1].startswith("val step 4:") and lines[at + 2].startswith("step 5:")
    # then the options the resume changed (the copy moved the folder, too)
    changed = lines[at + 1].removeprefix("options changed since opt.txt: ").split("; ")
    assert "niter 4 -> 5" in changed and "val_freq 2 -> 100" in changed, lines[at + 1]


def test_a_cut_g_weight_move_is_finished(base_run, dataset, tmp_path):
    """G_weight.ckpt is saved to G_weight.ckpt.next beside its record G_weight.json.next, then
    moved record first, then data, index last; after a kill between the two moves of the
    checkpoint (new data beside the old index, which fails its checksums, and which test.py
    explains), the start of a resume finishes the move, giving the new generator intact and
    the record that names it."""
    run = copy_of(base_run, tmp_path)
    g_weight = str(run / checkpoints.G_WEIGHT)
    record = {"iteration": 2, "val_psnr": 1.5}
    (run / checkpoints.KEPT).write_text(json.dumps(record))   # moved before the kill
    with tf.Graph().as_default():
        model.generator(tf.placeholder(tf.float32, [None, 16, 16, 3]), "paper")
        saver = checkpoints.generator_saver()
        with tf.Session() as sess:
            saver.restore(sess, str(run / "model.ckpt-2"))   # not the G_weight of iteration 4
            saver.save(sess, g_weight + checkpoints.STAGED, write_meta_graph=False,
                       write_state=False)
    data_file = "G_weight.ckpt{}.data-00000-of-00001"
    os.replace(run / data_file.format(checkpoints.STAGED), run / data_file.format(""))
    with pytest.raises(tf.errors.OpError, match="Checksum does not match"):
        tensors(g_weight)
    with pytest.raises(SystemExit, match="a kill cut its save short; train.py --continue_train"):
        test_script.main(["--weight_path", str(run), "--test_path", str(dataset / "val"),
                          "--result_dir", str(tmp_path / "result")])
    kept, notes = checkpoints.tidy(str(run), str(run / "model.ckpt-4"), 3)
    assert notes == ["finished moving the new G_weight.ckpt into place"]
    assert kept == [str(run / "model.ckpt-2"), str(run / "model.ckpt-4")]
    assert not list(run.glob("*" + checkpoints.STAGED + "*"))
    assert checkpoints.kept(str(run)) == record
    new, step_2 = tensors(g_weight), tensors(run / "model.ckpt-2")
    for name, value in new.items():
        np.testing.assert_array_equal(value, step_2[name])


@pytest.mark.parametrize("index_written", [False, True])
def test_a_kill_in_a_kept_g_save_leaves_the_record_naming_the_g_on_disk(index_written, base_run,
                                                                        tmp_path):
    """A kill during the staged save of a better G (its index not written yet) leaves
    G_weight.ckpt and G_weight.json as they were, and the resume deletes the staged pair; a
    kill once the index is written leaves a save the resume moves in, record first. Either
    way G_weight.json names the G on disk: iteration_of gives a fine-tune's start right."""
    run = copy_of(base_run, tmp_path)
    old_g, old_record = tensors(run / checkpoints.G_WEIGHT), checkpoints.kept(str(run))
    new_record = {"iteration": 3, "val_psnr": old_record["val_psnr"] + 1}
    (run / (checkpoints.KEPT + checkpoints.STAGED)).write_text(json.dumps(new_record))
    staged = run / (checkpoints.G_WEIGHT + checkpoints.STAGED)
    for f in run.glob("model.ckpt-2.*"):   # another G than the kept one of iteration 4
        if index_written or f.name.endswith(".data-00000-of-00001"):
            shutil.copy(f, str(staged) + f.name[len("model.ckpt-2"):])
    checkpoints.tidy(str(run), str(run / "model.ckpt-4"), 3)
    assert not list(run.glob("*" + checkpoints.STAGED + "*"))
    g, step_2 = tensors(run / checkpoints.G_WEIGHT), tensors(run / "model.ckpt-2")
    assert checkpoints.kept(str(run)) == (new_record if index_written else old_record)
    assert checkpoints.iteration_of(str(run / checkpoints.G_WEIGHT)) == (
        3 if index_written else old_record["iteration"])
    for name, value in g.items():
        np.testing.assert_array_equal(value, (step_2 if index_written else old_g)[name])


@pytest.mark.parametrize("ema", [False, True], ids=["G", "EMA of G"])
def test_a_validation_lost_in_a_kill_never_lets_a_worse_g_replace_the_kept_one(ema, dataset,
                                                                               tmp_path,
                                                                               monkeypatch,
                                                                               request):
    """G_weight.json records the validation G_weight.ckpt holds (G_weight_ema.json, with
    --ema_decay, the average's in G_weight_ema.ckpt: issue 26). A resume whose full checkpoint
    predates it (the kill came before the next model.ckpt) takes its PSNR as the best: a
    validation at 50 dB leaves a generator kept at 99 dB alone, and replaces one kept at 40."""
    base = request.getfixturevalue("ema_base_run" if ema else "base_run")
    g_weight = checkpoints.G_WEIGHT_EMA if ema else checkpoints.G_WEIGHT
    record = checkpoints.kept_record(g_weight)
    label = " ema psnr" if ema else " psnr"   # the figure's name in a "val step N:" line
    kept = json.loads((base / record).read_text())
    assert f"{label} {kept['val_psnr']:.3f} dB" in validation(base, kept["iteration"])
    monkeypatch.setattr(train, "psnr", lambda sr, hr: 50.0)   # beats the graph's best (~12 dB)
    for kept_db, replaced in ((99.0, False), (40.0, True)):
        case = tmp_path / f"kept_{kept_db:g}"
        case.mkdir()
        run = copy_of(base, case)
        (run / record).write_text(json.dumps({"iteration": 5, "val_psnr": kept_db}))
        before = {p.name: p.read_bytes() for p in run.glob(g_weight + ".*")}
        resume(dataset, case, 6, "--val_freq", "2", *(["--ema_decay", "0.9"] if ema else []))
        after = {p.name: p.read_bytes() for p in run.glob(g_weight + ".*")}
        assert (after != before) == replaced, kept_db
        assert json.loads((run / record).read_text()) == (
            {"iteration": 6, "val_psnr": 50.0} if replaced else
            {"iteration": 5, "val_psnr": kept_db})
        best = 50.0 if replaced else kept_db
        assert f"{label} 50.000 dB (best {best:.3f})" in validation(run, 6)
