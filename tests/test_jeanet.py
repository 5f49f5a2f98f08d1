"""JEANet (--model jeanet): graph shapes and size, FAAM attention, adaptive shortcuts, batch
norm, its options, loss and augmentation, a few steps on real faces, train.py and test.py."""
import json
import os

import cv2
import numpy as np
import pytest

import data
import losses
import model
from networks import jeanet
import test as test_script
from conftest import two_step_run
from options.test_options import TestOptions
from options.train_options import TrainOptions
from tf1 import session_config, tf
import train

pytestmark = pytest.mark.cpu_numbers   # reruns under tools/avx2_caps.py in .ci/run

PARAMS = 8_082_462        # trainable, at the default widths (32-128 channels)
GMACS = 4.618             # convolutions of one 16 -> 128 image
TINY = {128: 4, 64: 4, 32: 8, 16: 8}


def lr_input(batch=1):
    return tf.placeholder(tf.float32, [batch, 16, 16, 3])


def test_shapes_params_and_macs(graph):
    out = jeanet.generator(lr_input())
    assert out.rgb.shape.as_list() == [1, 128, 128, 3]
    assert [e.shape.as_list() for e in out.edges] == [[1, 32, 32, 1], [1, 64, 64, 1],
                                                      [1, 128, 128, 1]]
    assert model.count_params("generator") == PARAMS
    assert model.count_macs(out.rgb) / 1e9 == pytest.approx(GMACS, abs=1e-3)
    names = {v.op.name for v in tf.trainable_variables("generator")}
    assert {f"generator/FAAM{j}/fuse/w" for j in range(1, 17)} <= names
    assert {"generator/Edge1/prelu/slope", "generator/Edge3/w", "generator/RGB/w"} <= names


def test_ablations_drop_edge_blocks_and_shortcuts(graph):
    out = jeanet.generator(lr_input(), edge_blocks=(True, False, True), adaptive_shortcuts=False,
                           widths=TINY)
    assert out.edges[1] is None and out.edges[2].shape.as_list() == [1, 128, 128, 1]
    names = {v.op.name for v in tf.trainable_variables("generator")}
    assert "generator/Edge2/w" not in names and not any("alpha" in n for n in names)
    # without the 64 px edge block FAAM16 sees FAAM15's 4 channels, not 4 + 4 high-pass ones
    assert tf.trainable_variables("generator/FAAM16/feature/w")[0].shape.as_list()[2] == 4


@pytest.mark.parametrize("scale,size", [("down", 8), ("same", 16), ("up", 32)])
def test_faam_attention_shapes(graph, scale, size):
    x = tf.random.normal([2, 16, 16, 6])
    y = jeanet.faam(x, 32, "FAAM", scale, training=True)
    mu = graph.get_tensor_by_name("FAAM/mu:0")
    nu = graph.get_tensor_by_name("FAAM/nu:0")
    assert y.shape.as_list() == [2, size, size, 32]
    assert mu.shape.as_list() == [2, 1, 1, 32] and nu.shape.as_list() == [2, size, size, 1]
    # F_feat's two conv + batch norm + PReLU units, the first one resamples
    kernels = [tf.trainable_variables(f"FAAM/{n}/w")[0].shape.as_list()
               for n in ("feature", "feature2")]
    assert kernels == [[3, 3, 6, 32], [3, 3, 32, 32]]
    assert {"FAAM/feature2_bn/gamma", "FAAM/feature2/prelu/slope"} <= {
        v.op.name for v in tf.trainable_variables("FAAM")}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        mu, nu = sess.run([mu, nu])
    assert 0 < mu.min() and mu.max() < 1 and 0 < nu.min() and nu.max() < 1
    assert nu.std() > 0   # a map over the face, not a constant


def conv3x3_same(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Numpy 3x3 stride-1 SAME convolution (zero padding), NHWC."""
    p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    h, wd = x.shape[1:3]
    return sum(p[:, i:i + h, j:j + wd] @ w[i, j] for i in range(3) for j in range(3)) + b


def test_spatial_attention_from_hourglass_features(graph, val_faces):
    """nu of Eq 3 from every channel of the hourglass's multi-scale features (a 3x3 conv and a
    sigmoid), not CBAM's channel mean/max pooling; and its parameters in the whole network."""
    x = tf.constant(val_faces[:2].astype(np.float32) / 127.5 - 1.0)
    jeanet.faam(x, 16, "FAAM", "down", training=True)
    h = graph.get_tensor_by_name("FAAM/hourglass_out:0")
    nu = graph.get_tensor_by_name("FAAM/nu:0")
    w, b = tf.trainable_variables("FAAM/spatial")
    assert w.shape.as_list() == [3, 3, 8, 1] and nu.shape.as_list() == [2, 64, 64, 1]
    pools = [op.type for op in graph.get_operations() if op.name.startswith("FAAM/spatial")
             and op.type in ("Max", "Mean")]
    assert not pools
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        h, nu, w, b = sess.run([h, nu, w, b])
    want = 1 / (1 + np.exp(-conv3x3_same(h.astype(np.float64), w, b)))
    np.testing.assert_allclose(nu, want, rtol=1e-4, atol=1e-6)
    assert h.shape == (2, 64, 64, 8) and nu.std() > 1e-3
    with tf.Graph().as_default():
        jeanet.generator(lr_input())
        spatial = sum(model.count_params(f"generator/FAAM{j}/spatial") for j in range(1, 17))
    sizes = [64, 32, 16] + [16] * 10 + [32, 64, 128]   # FAAM 1-16 output sizes
    assert spatial == sum(9 * jeanet.WIDTHS[s] // 2 + 1 for s in sizes) == 8224


def test_adaptive_shortcuts_trainable_and_logged(graph):
    lr = lr_input()
    out = jeanet.generator(lr, widths=TINY)
    names = [f"generator/{w}_{k}" for k in (1, 2, 3) for w in ("alpha", "beta")]
    trainable = {v.op.name: v for v in tf.trainable_variables("generator")}
    assert set(names) <= set(trainable)
    assert sorted(v.op.name for v in tf.get_collection(model.LOGGED_SCALARS)) == sorted(names)
    grads = tf.gradients(tf.reduce_mean(out.rgb), [trainable[n] for n in names])
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        grads = sess.run(grads, {lr: np.full([1, 16, 16, 3], 100.0)})
    assert all(g != 0 for g in grads)


def test_batch_norm_modes_and_update_ops(graph):
    x = np.random.default_rng(0).normal(3.0, 2.0, (4, 8, 8, 5)).astype(np.float32)
    training = tf.placeholder_with_default(False, [])
    y = jeanet.batch_norm(tf.constant(x), training, "bn")
    updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    moving_mean, moving_var = tf.get_collection(tf.GraphKeys.MOVING_AVERAGE_VARIABLES)
    assert len(updates) == 2 and moving_mean not in tf.trainable_variables()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        np.testing.assert_allclose(sess.run(y), x / np.sqrt(1 + 1e-5), rtol=1e-5)  # 0 / 1 stats
        y_train = sess.run(y, {training: True})
        np.testing.assert_allclose(y_train.mean((0, 1, 2)), 0, atol=1e-4)
        np.testing.assert_allclose(y_train.std((0, 1, 2)), 1, atol=1e-3)
        sess.run(updates)                                   # inference: no update
        np.testing.assert_array_equal(sess.run(moving_mean), 0)
        sess.run(updates, {training: True})
        np.testing.assert_allclose(sess.run(moving_mean), 0.1 * x.mean((0, 1, 2)), rtol=1e-4)
        np.testing.assert_allclose(sess.run(moving_var), 0.9 + 0.1 * x.var((0, 1, 2)), rtol=1e-4)


def test_per_model_defaults():
    jea = TrainOptions().parse(["--model", "jeanet"], verbose=False)
    assert (jea.learning_rate, jea.batchSize, jea.losses, jea.lambda_edge) == (2e-4, 16,
                                                                             ["l1", "edge"], 0.01 / 255)
    assert jea.rotations == [90, 180, 270] and jea.rescale == 1.3
    mine = TrainOptions().parse(["--model", "jeanet", "--learning_rate", "1e-3", "--losses",
                                 "l1"], verbose=False)
    assert mine.learning_rate == 1e-3 and mine.losses == ["l1"] and mine.lambda_edge == 0.01 / 255
    eip = TrainOptions().parse([], verbose=False)
    assert (eip.learning_rate, eip.lambda_edge, eip.rotations, eip.rescale) == (1e-4, 0.9,
                                                                              [90, 270], 1.0)
    assert jea.hr_resize == "bicubic" and eip.hr_resize == "bilinear"
    scored = TestOptions().parse(["--model", "jeanet"], verbose=False)
    assert (scored.y_channel, scored.hr_resize) == (True, "bicubic")   # Section IV-A, IV-B
    rgb = TestOptions().parse(["--model", "jeanet", "--no-y_channel"], verbose=False)
    assert not rgb.y_channel
    assert not TestOptions().parse([], verbose=False).y_channel


def test_l1_matches_numpy(graph, val_faces):
    sr, hr = val_faces[:2].astype(np.float32), val_faces[2:4].astype(np.float32)
    with tf.Session() as sess:
        got = sess.run(losses.l_1(tf.constant(sr), tf.constant(hr)))
    assert got == pytest.approx(np.abs(sr - hr).mean(), rel=1e-5)


def test_rescale_zooms_about_the_centre():
    ramp = np.tile(np.linspace(0, 254, 128, dtype=np.float32)[None, :, None], (128, 1, 3))
    rng = np.random.default_rng(0)
    spans = []
    for _ in range(20):
        out = data.rescale(ramp.astype(np.uint8), rng, 1.3)
        assert out.shape == (128, 128, 3)
        assert abs(float(out[64, 63:65, 0].mean()) - 127) < 3     # the centre stays put
        spans.append(float(out[64, -1, 0]) - float(out[64, 0, 0]))
    assert 254 / 1.3 - 2 < min(spans) < max(spans) < 254 + 1 and np.ptp(spans) > 10


def test_adam_steps_lower_the_loss(train_paths):
    opt = TrainOptions().parse(["--model", "jeanet", "--batchSize", "2"], verbose=False)
    _, batch = data.load_eval_set(train_paths[:2])
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        g = train.build_train_graph(opt)
        moving = tf.get_collection(tf.GraphKeys.MOVING_AVERAGE_VARIABLES, "generator")
        assert len(moving) == 2 * 2 * 16 and set(g.terms) == {"l1", "edge"}
        with tf.Session(config=session_config()) as sess:
            sess.run(tf.global_variables_initializer())
            before = sess.run(moving[0])
            edge, maps = sess.run([g.terms["edge"], g.sr.edges], train.feed(g, batch))
            values = [sess.run([g.terms, g.total, g.train_g], train.feed(g, batch))[:2]
                      for _ in range(5)]
            assert not np.allclose(sess.run(moving[0]), before)   # update ops ran with train_g
            logged = sess.run(g.logged)
    # Eq 7: the edge maps at 32, 64, 128 px weighted by 1/r, r = 4, 2, 1
    want = sum(np.mean((m - t) ** 2) / r for m, t, r in zip(maps, batch.edges, (4, 2, 1)))
    assert edge == pytest.approx(want, rel=1e-4)
    totals = [total for _, total in values]
    assert np.all(np.isfinite(totals)) and totals[-1] < 0.8 * totals[0], totals
    assert values[-1][0]["l1"] < 0.8 * values[0][0]["l1"]
    assert sorted(logged) == sorted(f"generator/{w}_{k}" for k in (1, 2, 3)
                                    for w in ("alpha", "beta"))


def tensorboard_tags(run_dir) -> set:
    return {v.tag for path in (run_dir / "logs").glob("events.*")
            for event in tf.train.summary_iterator(str(path)) for v in event.summary.value}


def test_train_then_test_end_to_end(tmp_path, train_paths, val_paths, capsys):
    run = two_step_run("jeanet", tmp_path, train_paths, val_paths, n_train=4, batch=2)
    val = tmp_path / "val"
    assert "learning_rate: 0.0002" in (run / "opt.txt").read_text()
    assert "step 2: l1" in (run / "loss_log.txt").read_text()
    saved = dict(tf.train.list_variables(str(run / "G_weight.ckpt")))
    assert "generator/FAAM4/feature_bn/moving_mean" in saved and "generator/alpha_1" in saved
    assert not any("Adam" in name for name in saved)
    assert {"generator/alpha_1", "generator/beta_3", "loss/l1"} <= tensorboard_tags(run)

    capsys.readouterr()
    # ablation flags that disagree with the checkpoint: its architecture wins, with a note
    summary = test_script.main(["--model", "jeanet", "--weight_path", str(run), "--test_path",
                                str(val), "--result_dir", str(tmp_path / "result"), "--metrics",
                                "psnr,ssim", "--no_figures",
                                "--no_adaptive_shortcuts", "--edge_blocks", "1,1,0"])
    printed = capsys.readouterr().out
    assert "trained with no --no_adaptive_shortcuts: using that, not --no_adaptive_shortcuts" \
        in printed and "trained with --edge_blocks 1,1,1" in printed
    assert summary["images"]["scored"] == 2 and summary["complexity"]["params"] == PARAMS
    assert summary["y_channel"]   # JEANet's default
    assert json.loads((tmp_path / "result" / "summary.json").read_text())["model"] == "jeanet"
    assert (tmp_path / "result" / "summary.md").read_text().startswith("# JEANet evaluation")
    stem = os.path.splitext(os.path.basename(val_paths[0]))[0]
    assert cv2.imread(str(tmp_path / "result" / f"{stem}_edge128.png")).shape[:2] == (128, 128)
    with pytest.raises(SystemExit, match="--model eipnet"):   # a JEANet checkpoint is not EIPNet
        test_script.main(["--weight_path", str(run), "--test_path", str(val), "--result_dir",
                          str(tmp_path / "wrong"), "--metrics", "psnr"])
