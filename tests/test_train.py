"""train.py end to end on real faces: files written, resume, bad input, a few steps that
lower the loss, and bf16 tracking fp32 (interruption and damage: test_robustness.py)."""
import os

import cv2
import numpy as np
import pytest

from conftest import log_steps, random_generator, train_args
import data
from options.train_options import TrainOptions
from tf1 import session_config, tf, usable_precision
import train


def test_train_writes_run_and_resumes(dataset, tmp_path):
    argv = train_args(dataset, tmp_path, "--niter", "4", "--save_freq", "2", "--val_freq", "2",
                      "--losses", "rgb,edge,lc,id,ad", "--gan_start", "2")
    train.main(argv)
    run = tmp_path / "run"
    assert "lambda_edge" in (run / "opt.txt").read_text()
    assert tf.train.latest_checkpoint(str(run)).endswith("model.ckpt-4")
    assert (run / "G_weight.ckpt.index").exists()
    assert sorted(os.listdir(run / "samples")) == ["step_0000002.png", "step_0000004.png"]
    assert list((run / "logs").glob("events.out.tfevents.*"))
    log = (run / "loss_log.txt").read_text()
    assert "step 2: rgb" in log and " D " in log.split("step 4:")[1]   # GAN phase from step 2
    assert "val step 4: psnr" in log
    g_vars = dict(tf.train.list_variables(str(run / "G_weight.ckpt")))
    assert all(name.startswith("generator/") for name in g_vars) and len(g_vars) == 28

    with pytest.raises(SystemExit, match="--continue_train"):
        train.main(argv)                       # never overwrite a run by accident
    train.main(argv[:-6] + ["--niter", "6", "--continue_train", "--losses", "rgb,edge,lc,id,ad"])
    assert log_steps(run) == [1, 2, 3, 4, 5, 6]
    assert tf.train.latest_checkpoint(str(run)).endswith("model.ckpt-6")
    # what the resume changed stays in the log (opt.txt now holds the resume's options)
    assert ("resumed from iteration 4 (model.ckpt-4)\noptions changed since opt.txt: "
            "gan_start 2 -> 1200000; niter 4 -> 6; val_freq 2 -> 500\n"
            in (run / "loss_log.txt").read_text())
    assert "gan_start: 1200000" in (run / "opt.txt").read_text()


def test_missing_folder_stops_before_graph(tmp_path):
    with pytest.raises(SystemExit, match="image folder not found"):
        train.main(["--train_path", str(tmp_path / "none"), "--checkpoint_path", str(tmp_path)])
    assert not (tmp_path / "my_run").exists()   # the default --save_path


def test_a_folder_of_trained_weights_is_never_trained_into(dataset, tmp_path):
    """train.py with no --save_path writes checkpoint/my_run, never a shipped weights folder:
    one that holds a G but no training state (as checkpoint/eipnet_lfw128) is refused, with or
    without --continue_train, naming --pretrained; nothing in it changes."""
    import shutil
    shipped = os.path.join(os.path.dirname(__file__), "..", "checkpoint", "eipnet_lfw128")
    # result/ is what `python test.py` (README step 1, .ci/run) writes there: not weights
    weights = shutil.copytree(shipped, tmp_path / "eipnet_lfw128",
                              ignore=shutil.ignore_patterns("result"))
    before = {p: p.read_bytes() for p in weights.rglob("*") if p.is_file()}
    base = ["--train_path", str(dataset / "train"), "--checkpoint_path", str(tmp_path),
            "--niter", "1"]
    for extra in ([], ["--continue_train"]):
        with pytest.raises(SystemExit, match=f"holds trained weights .* no training state to "
                                             f"resume: choose another --save_path "
                                             f"\\(--pretrained {weights} starts"):
            train.main(base + ["--save_path", "eipnet_lfw128", *extra])
    assert {p: p.read_bytes() for p in weights.rglob("*") if p.is_file()} == before
    from options.train_options import TrainOptions
    assert TrainOptions().parse([], verbose=False).save_path == "my_run"


def test_continue_without_checkpoint_or_bad_losses(dataset, tmp_path):
    with pytest.raises(SystemExit, match="no checkpoint in .* to resume"):
        train.main(train_args(dataset, tmp_path, "--continue_train"))
    with pytest.raises(SystemExit, match="--losses rgb,perceptual"):
        train.main(train_args(dataset, tmp_path, "--losses", "rgb,perceptual"))


def fixed_batch(paths, n=4):
    _, ex = data.load_eval_set(paths[:n])
    return ex


def run_steps(opt, batch, steps):
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        g = train.build_train_graph(opt)
        with tf.Session(config=session_config(opt.precision)) as sess:
            sess.run(tf.global_variables_initializer())
            return [sess.run([g.total, g.train_g], train.feed(g, batch))[0] for _ in range(steps)]


def test_adam_steps_lower_the_total_loss(train_paths):
    opt = TrainOptions().parse(["--losses", "rgb,edge,lc,id"], verbose=False)
    values = run_steps(opt, fixed_batch(train_paths), 6)
    assert all(np.isfinite(values))
    assert values[-1] < 0.7 * values[0], values


def test_scale_4_trains_and_its_runs_carry_the_scale(dataset, tmp_path, train_paths):
    """--scale 4: 32x32 inputs (the bilinear chain's 32 px level), Adam steps that lower the
    loss, and a run whose G_weight.ckpt a --pretrained fine-tune reads as 4x without the flag.
    Other models refuse the flag."""
    opt = TrainOptions().parse(["--losses", "rgb,edge,lc", "--scale", "4"], verbose=False)
    _, batch = data.load_eval_set(train_paths[:4], lr_size=32)
    assert batch.lr.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(batch.lr[0], data.degrade(data.read_image(train_paths[0]))[2])
    values = run_steps(opt, batch, 6)
    assert values[-1] < 0.7 * values[0], values
    train.main(train_args(dataset, tmp_path, "--niter", "1", "--val_freq", "1", "--save_freq",
                          "1", "--scale", "4", "--degradation", "photo"))
    g_vars = dict(tf.train.list_variables(str(tmp_path / "run" / "G_weight.ckpt")))
    assert "generator/Step1_1/w" not in g_vars and "generator/Step2_1/w" in g_vars
    tuned = train.pretrained_options(TrainOptions().parse(
        ["--pretrained", str(tmp_path / "run")], verbose=False))
    assert tuned.scale == 4
    with pytest.raises(SystemExit):
        TrainOptions().parse(["--model", "jeanet", "--scale", "4"], verbose=False)


def test_eq11_defaults_loss_norm_and_discriminator_in_the_graph(train_paths):
    """Eq 11's default weights at Eq 8-9's normalisation (the authors' balance), and
    --loss_norm / --discriminator reaching the train graph."""
    opt = TrainOptions().parse([], verbose=False)
    assert (opt.loss_norm, opt.discriminator) == ("paper", "paper")
    assert (opt.lambda_edge, opt.ad_r, opt.alpha_id) == (0.9, 0.015, 60.0)
    batch = fixed_batch(train_paths, 2)
    terms, fc_inputs = {}, {}
    for variant in ("paper", "authors"):
        opt = TrainOptions().parse(["--losses", "rgb,lc,ad", "--loss_norm", variant,
                                    "--discriminator", variant], verbose=False)
        with tf.Graph().as_default() as graph:
            tf.set_random_seed(0)
            g = train.build_train_graph(opt)
            fc_inputs[variant] = graph.get_operation_by_name("discriminator/Reshape").inputs[0]
            with tf.Session() as sess:
                sess.run(tf.global_variables_initializer())
                terms[variant] = sess.run(g.terms, train.feed(g, batch))
    for name in ("rgb", "lc"):    # same seed, same SR: only the normalisation differs
        assert terms["paper"][name] == pytest.approx(3 * terms["authors"][name], rel=1e-4)
    assert fc_inputs["paper"].op.type == "LeakyRelu" != fc_inputs["authors"].op.type


@pytest.mark.skipif(usable_precision("bf16") != "bf16",
                    reason="no avx512_bf16/amx_bf16 on this CPU, or oneDNN off or capped: "
                           "bf16 runs fp32")
def test_bf16_tracks_fp32(train_paths):
    batch = fixed_batch(train_paths)
    curves = {p: run_steps(TrainOptions().parse(["--losses", "rgb,edge,lc", "--precision", p],
                                                verbose=False), batch, 4)
              for p in ("fp32", "bf16")}
    np.testing.assert_allclose(curves["bf16"], curves["fp32"], rtol=0.05)
    assert curves["bf16"][-1] < curves["bf16"][0]


def test_pretrained_fine_tunes_from_the_authors_weights(dataset, tmp_path):
    """--pretrained starts G from a generator checkpoint (here the authors'-layout fixture,
    1x1 tail, read from the checkpoint) and trains it: one step moves it only a little."""
    from conftest import OFFICIAL
    train.main(train_args(dataset, tmp_path, "--niter", "1", "--val_freq", "1", "--save_freq",
                          "1", "--losses", "rgb", "--pretrained", str(OFFICIAL)))
    run = tmp_path / "run"
    assert "G_weight.ckpt" in (run / "opt.txt").read_text()          # the resolved prefix
    before = tf.train.load_checkpoint(str(OFFICIAL / "G_weight.ckpt"))
    after = tf.train.load_checkpoint(str(run / "G_weight.ckpt"))
    assert after.get_tensor("generator/RGB/w").shape == (1, 1, 128, 3)
    for name in ("generator/Conv1/w", "generator/RGB/w", "generator/Step2_1/w"):
        old, new = before.get_tensor(name), after.get_tensor(name)
        step = np.abs(new - old).max()
        assert 0 < step < 1e-3 * 2, (name, step)      # one Adam step of lr 1e-4 per weight
        assert np.corrcoef(old.ravel(), new.ravel())[0, 1] > 0.999


def test_a_4x_eipnet_starts_from_the_8x_weights_it_shares(dataset, tmp_path, capsys):
    """--scale 4 --pretrained_layers shared on the shipped 8x EIPNet: every variable of the
    same name and shape starts from it (one step moves it only a little), the first conv and
    Step2_1's kernel, of other shapes at 4x, start fresh and are named; an SRResNet, which
    shares EIPNet's RGB bias alone, is refused in one line."""
    shipped = os.path.join(os.path.dirname(__file__), "..", "checkpoint", "eipnet_lfw128")
    train.main(train_args(dataset, tmp_path, "--niter", "1", "--val_freq", "1", "--save_freq",
                          "1", "--losses", "rgb", "--scale", "4", "--pretrained", shipped,
                          "--pretrained_layers", "shared"))
    note = next(line for line in capsys.readouterr().out.splitlines()
                if line.startswith("note: --pretrained_layers shared"))
    # 4x: 3,911,557 parameters; fresh: Conv1 (3x3x3x256 + 256) and Step2_1/w (3x3x256x512)
    assert "2,724,741 of 3,911,557 generator parameters (70%)" in note
    assert "generator/Conv1/w" in note and "generator/Step2_1/w" in note
    assert "generator/Step2_2/w" not in note
    before = tf.train.load_checkpoint(os.path.join(shipped, "G_weight.ckpt"))
    after = tf.train.load_checkpoint(str(tmp_path / "run" / "G_weight.ckpt"))
    assert after.get_tensor("generator/Conv1/w").shape == (3, 3, 3, 256)
    assert not after.has_tensor("generator/Step1_1/w")
    for name in ("generator/Step2_2/w", "generator/Step3_1/w", "generator/RGB/w"):
        old, new = before.get_tensor(name), after.get_tensor(name)
        assert 0 < np.abs(new - old).max() < 2e-3, name      # one Adam step of lr 1e-4
    assert after.get_tensor("generator/Step2_1/w").shape == (3, 3, 256, 512)
    srresnet = random_generator("srresnet", tmp_path / "srresnet")
    with pytest.raises(SystemExit, match="holds 0% of the parameters of --model eipnet"):
        train.main(train_args(dataset, tmp_path, "--save_path", "run2", "--niter", "1",
                              "--pretrained", str(srresnet), "--pretrained_layers", "shared"))


def test_ema_follows_the_weights_from_the_pretrained_start(dataset, tmp_path):
    """--ema_decay 0.9 from the shipped weights: the average starts at the pretrained weights
    (not the random init) and follows s_k = d_k s_(k-1) + (1 - d_k) w_k with TensorFlow's
    warm-up d_k = min(0.9, (1 + k) / (10 + k)), checked on the saved weights of each step; the
    best average is kept as G_weight_ema.ckpt in G_weight.ckpt's layout, and restores."""
    import checkpoints
    shipped = os.path.join(os.path.dirname(__file__), "..", "checkpoint", "eipnet_lfw128",
                           checkpoints.G_WEIGHT)
    train.main(train_args(dataset, tmp_path, "--niter", "2", "--save_freq", "1", "--val_freq",
                          "2", "--ema_decay", "0.9", "--pretrained", shipped))
    run = tmp_path / "run"
    name = "generator/Step3_1/w"
    average = tf.train.load_variable(str(run / "model.ckpt-1"), name + "/ExponentialMovingAverage")
    expected = tf.train.load_variable(shipped, name)
    for k in (1, 2):
        d = min(0.9, (1 + k) / (10 + k))
        prefix = str(run / f"model.ckpt-{k}")
        expected = d * expected + (1 - d) * tf.train.load_variable(prefix, name)
        average = tf.train.load_variable(prefix, name + "/ExponentialMovingAverage")
        np.testing.assert_allclose(average, expected, rtol=1e-5, atol=1e-7)
    kept = str(run / checkpoints.G_WEIGHT_EMA)
    assert (dict(tf.train.list_variables(kept))
            == dict(tf.train.list_variables(str(run / checkpoints.G_WEIGHT))))
    np.testing.assert_array_equal(tf.train.load_variable(kept, name), average)
    assert checkpoints.kept_psnr(str(run), checkpoints.G_WEIGHT_EMA) > 10
    assert "ema psnr" in (run / "loss_log.txt").read_text()


def test_learning_curve_chains_fine_tunes_by_the_iteration_each_started_at(dataset, tmp_path):
    """tools/learning_curve.py on the shipped model's two runs and two real fine-tunes, each
    from the one before: the shipped second run has no start line (its count goes on from the
    first run's best validation of G), the first fine-tune names the shipped G_weight.ckpt and
    the iteration its G_weight.json records, the second the first's (iteration 2); batches 16,
    16, 2 and 3; the EMA read where the run kept one."""
    import checkpoints
    from options import opt_txt
    from tools import learning_curve
    shipped = os.path.join(os.path.dirname(__file__), "..", "checkpoint", "eipnet_lfw128")
    first, second = tmp_path / "a" / "run", tmp_path / "b" / "run"
    train.main(train_args(dataset, tmp_path / "a", "--niter", "2", "--val_freq", "2",
                          "--ema_decay", "0.9", "--pretrained", shipped))
    train.main(train_args(dataset, tmp_path / "b", "--niter", "3", "--val_freq", "1",
                          "--batchSize", "3", "--pretrained", str(first)))
    shipped_start = checkpoints.iteration_of(os.path.join(shipped, checkpoints.G_WEIGHT))
    assert shipped_start == 5200   # the second run's step; its G_weight.json says so
    assert (f"generator initialised from {os.path.join(shipped, checkpoints.G_WEIGHT)} "
            f"(iteration {shipped_start})\n" in (first / "loss_log.txt").read_text())
    assert (f"generator initialised from {first / checkpoints.G_WEIGHT} (iteration 2)\n"
            in (second / "loss_log.txt").read_text())
    assert checkpoints.iteration_of(tf.train.latest_checkpoint(str(first))) == 2

    def validations(run: str) -> dict[int, float]:
        logged = [line.split() for line in open(os.path.join(run, "loss_log.txt"))
                  if line.startswith("val step")]
        return {int(w[2].rstrip(":")): float(w[4]) for w in logged}   # last line wins

    run1 = os.path.join(shipped, "run1_27k")
    run1_points, shipped_points = validations(run1), validations(shipped)
    batch = int(opt_txt.read(shipped)["batchSize"])
    assert int(opt_txt.read(run1)["batchSize"]) == batch == 16
    points = learning_curve.curve([run1, shipped, str(first), str(second)])
    assert [(p.images, p.psnr) for p in points if p.run == 0] == [
        (batch * s, v) for s, v in sorted(run1_points.items())]
    run2_start = batch * max(run1_points, key=run1_points.get)
    assert run2_start == 27200   # the first run's kept G, which the second run started from
    assert [(p.images, p.psnr) for p in points if p.run == 1] == [
        (run2_start + batch * s, v) for s, v in sorted(shipped_points.items())]
    start = run2_start + batch * shipped_start
    assert [p for p in points if p.run == 1][-1].images == start == 110400
    a = [p for p in points if p.run == 2]
    assert [(p.images, p.val_size) for p in a] == [(start + 2 * 2, 4)]
    assert a[0].psnr == pytest.approx(checkpoints.kept_psnr(str(first)), abs=5e-4)
    assert a[0].psnr_ema == pytest.approx(
        checkpoints.kept_psnr(str(first), checkpoints.G_WEIGHT_EMA), abs=5e-4)
    b = [p for p in points if p.run == 3]
    assert [p.images for p in b] == [start + 2 * 2 + 3 * s for s in (1, 2, 3)]
    assert all(p.psnr_ema is None for p in b) and b[-1].psnr > 10
    learning_curve.draw(points, str(tmp_path / "curve.png"))
    assert cv2.imread(str(tmp_path / "curve.png")).shape == (360, 640, 3)


def test_learning_curve_reads_resumed_logs_and_the_best_step(tmp_path):
    """A step validated twice (a resume from before it) keeps its last line; without a start
    line the next run goes on from the best validation of G, not the last; a run with no
    validation is named."""
    from tools import learning_curve
    runs = []
    for name, batch, log in (
            ("one", 16, ["val step 100: psnr 20.000 dB (best 20.000)",
                         "val step 200: psnr 21.500 dB (best 21.500)",
                         "val step 300: psnr 21.000 dB (best 21.500)",
                         "resumed from iteration 200 (model.ckpt-200)",
                         "val step 300: psnr 21.200 dB (best 21.500)"]),
            ("two", 8, ["step 10: rgb 1.0 total 1.0 (4.00 img/s)",
                        "val step 50: psnr 22.000 dB (best 22.000), ema psnr 22.100 dB (best 22.100)"])):
        run = tmp_path / name
        run.mkdir()
        (run / "opt.txt").write_text(f"----- Options -----\n     batchSize: {batch}   \n"
                                     f"      val_size: 64   \t[default: 0]\n----- End -----\n")
        (run / "loss_log.txt").write_text("\n".join(log) + "\n")
        runs.append(str(run))
    points = learning_curve.curve(runs)
    assert [(p.run, p.images, p.val_size, p.psnr, p.psnr_ema) for p in points] == [
        (0, 1600, 64, 20.0, None), (0, 3200, 64, 21.5, None), (0, 4800, 64, 21.2, None),
        (1, 3200 + 400, 64, 22.0, 22.1)]
    assert learning_curve.thinned(points, 2) == [points[1], points[2], points[3]]
    (tmp_path / "one" / "loss_log.txt").write_text("step 10: rgb 1.0\n")
    with pytest.raises(SystemExit, match="one/loss_log.txt has no 'val step' line"):
        learning_curve.main(runs)


def test_cosine_schedule_falls_from_the_rate_to_zero_at_niter():
    opt = TrainOptions().parse(["--lr_schedule", "cosine", "--niter", "100",
                                "--learning_rate", "4e-4"], verbose=False)
    with tf.Graph().as_default():
        step = tf.placeholder(tf.int64, [])
        rate = train.learning_rate(opt, step)
        with tf.Session() as sess:
            got = [sess.run(rate, {step: s}) for s in (0, 50, 100, 150)]
    np.testing.assert_allclose(got, [4e-4, 2e-4, 0, 0], atol=1e-9)


def test_held_out_faces_are_a_spread_tenth_never_trained_on(train_paths):
    """Without --test_path (fresh runs, fine-tunes and their resumes alike) train.py validates
    on a tenth of the training faces, at most --val_size and at least one, spread over the
    sorted list; the same on every call (a resume validates on the same faces); disjoint from
    training; too few faces is one line."""
    training, val = train.held_out(train_paths[:100], 64)
    assert len(val) == 10 and val == train_paths[:100:10]
    assert set(training).isdisjoint(val) and len(training) + len(val) == 100
    assert train.held_out(train_paths[:100], 64) == (training, val)
    assert len(train.held_out(train_paths[:1000], 64)[1]) == 64
    assert len(train.held_out(train_paths[:5], 64)[1]) == 1
    with pytest.raises(data.DataError, match="pass --test_path"):
        train.held_out(train_paths[:1], 64)
    assert TrainOptions().parse([], verbose=False).test_path is None
    assert TrainOptions().parse(["--pretrained", "w"], verbose=False).test_path is None
    assert TrainOptions().parse(["--test_path", "v"], verbose=False).test_path == "v"
