"""The prior-guided network (--model prior_guided, prior_guided_gan): graph shapes and size, the
basic block (Eq 3.1-3.4 and its switchable deviations), the LR-fed prior branch, SRResNet's
residual block, the thesis's 11 parsing classes from landmarks and CelebAMask-HQ masks on real
faces, the cache, the per-model defaults, PyTorch's RMSProp against numpy, RMSProp steps lowering
Eq 3.8, a GAN step with L_vgg, and train.py + test.py of method 2 (the FaceNet stand-in named in
the log and the summary)."""
import json
import os

import cv2
import numpy as np
import pytest

import checkpoints
import data
from evaluation import metrics
import model
from networks import generators, jeanet, perceptual, prior_guided
from photos import parsing
import test as test_script
from conftest import copy_faces, two_step_run
from options.test_options import TestOptions
from options.train_options import TrainOptions
from tf1 import session_config, tf
import train

pytestmark = pytest.mark.cpu_numbers   # reruns under tools/avx2_caps.py in .ci/run

# generator, trainable: the design before the thesis was read had 3,017,105; SRResNet's residual
# block adds 2 BN layers x (gamma, beta) x 64 channels in each of the prior branch's 3 blocks and
# the fusing module's 1
PARAMS = 3_017_105 + 4 * 2 * 2 * 64
GMACS = 4.582           # generator convolutions of one 16 -> 128 image
D_PARAMS = 38_245_569   # Table 3.4's discriminator at 128 px (33.6M of it in dense 1024)
EYES_NOSE_MOUTH = ("left_eye", "right_eye", "nose", "upper_lip", "inner_mouth", "lower_lip")
THESIS_CLASSES = ("jawline", "left_brow", "right_brow", "left_eye", "right_eye", "nose",
                  "upper_lip", "inner_mouth", "lower_lip", "left_ear", "right_ear")


def centroid(m: np.ndarray) -> np.ndarray:
    """(y, x) of a part map's mass."""
    ys, xs = np.nonzero(m > 127)
    return np.array([ys.mean(), xs.mean()])


def test_shapes_params_and_macs(graph):
    lr = tf.placeholder(tf.float32, [1, 16, 16, 3])
    out = prior_guided.generator(lr)
    assert out.rgb.shape.as_list() == out.coarse.shape.as_list() == [1, 128, 128, 3]
    assert out.parsing.shape.as_list() == [1, 128, 128, parsing.N_PARTS] == [1, 128, 128, 11]
    assert out.edges == (None, None, None)
    assert model.count_params("generator") == PARAMS
    assert model.count_macs(out.rgb) / 1e9 == pytest.approx(GMACS, abs=1e-3)
    names = {v.op.name for v in tf.trainable_variables("generator")}
    assert {"generator/sr_branch/block16/conv5x5/w", "generator/sr_branch/upscale3/prelu/slope",
            "generator/prior_branch/hourglass/bottom/w", "generator/prior_branch/parsing/w",
            "generator/fusing/res/conv2/w", "generator/fusing/res/bn2/gamma",
            "generator/prior_branch/res3/bn1/beta", "generator/RGB/w"} <= names
    assert len(tf.get_collection(tf.GraphKeys.UPDATE_OPS, "generator")) == 2 * 2 * 4
    logits = prior_guided.discriminator(out.rgb, training=True)
    assert logits.shape.as_list() == [1, 1]
    assert model.count_params("discriminator") == D_PARAMS
    assert len(tf.get_collection(tf.GraphKeys.UPDATE_OPS, "discriminator")) == 2 * 7


def test_basic_block_dilated_field_and_softmax_excitation(graph):
    x = tf.random.normal([2, 8, 8, 16], seed=1)
    y = prior_guided.basic_block(x, "block", prior_guided.Design())
    assert y.shape.as_list() == [2, 8, 8, 16]
    to_batch = [op for op in graph.get_operations()
                if op.name.startswith("block/conv5x5/") and op.type == "SpaceToBatchND"]
    assert len(to_batch) == 1   # dilation 2: atrous conv (tests/test_model.py checks its values)
    assert tf.trainable_variables("block/conv5x5")[0].shape.as_list() == [3, 3, 16, 16]
    assert tf.trainable_variables("block/excite1")[0].shape.as_list() == [16, 1]  # C / 16
    weights = graph.get_tensor_by_name("block/excitation:0")   # (N,1,1,C)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        weights, x_val, y_val = sess.run([weights, x, y])
    np.testing.assert_allclose(weights.sum(axis=3), 1.0, rtol=1e-5)   # softmax over channels
    assert weights.min() > 0 and not np.allclose(y_val, x_val)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("se_relu", [False, True])
def test_excitation_is_eq_3_3_and_the_relu_a_switch(graph, val_faces, se_relu):
    """F_scale = s(f_C2(f_C1(z))) with z the channel means (Eq 3.2), against numpy on features
    of real faces (a random-signed conv of them, so f_C1 has negative outputs for the ReLU to
    cut); with --se_relu, SENet's ReLU between the dense layers."""
    tf.set_random_seed(0)   # the same weights every run: the random init failed it 1 run in ~20
    faces = val_faces[:2].astype(np.float32) / 127.5 - 1
    f = model.conv(tf.constant(faces), 64, "features", relu=False)
    with tf.variable_scope("block"):
        scale = prior_guided.excitation(f, se_relu)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        f_val, got, (w1, b1, w2, b2) = sess.run([f, scale, tf.trainable_variables("block")])
    z = f_val.mean(axis=(1, 2)) @ w1 + b1
    assert (z < 0).any()
    want = softmax((np.maximum(z, 0) if se_relu else z) @ w2 + b2)
    np.testing.assert_allclose(got[:, 0, 0], want, rtol=1e-4, atol=1e-7)


def test_eq_3_4_has_no_residual_unless_switched_on(graph, val_faces):
    """F_out = conv(ReLU(F' * F_scale)); --block_skip adds F_in, with the very same weights."""
    x = model.conv(tf.constant(val_faces[:2].astype(np.float32) / 127.5 - 1), 16, "in")
    plain = prior_guided.basic_block(x, "block", prior_guided.Design())
    with tf.variable_scope(tf.get_variable_scope(), reuse=True):
        skip = prior_guided.basic_block(x, "block", prior_guided.Design(block_skip=True))
    relus = [op for op in graph.get_operations()
             if op.type == "Relu" and op.name.startswith("block/")]
    assert len(relus) == 1   # Eq 3.4's delta only: none in the excitation (Eq 3.3)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        x_val, plain_val, skip_val = sess.run([x, plain, skip])
    np.testing.assert_allclose(skip_val - plain_val, x_val, atol=1e-5)
    assert np.abs(plain_val - x_val).mean() > 0.5 * np.abs(x_val).mean()


def sr_branch_vars() -> list:
    return tf.trainable_variables("generator/sr_branch")


@pytest.mark.parametrize("prior_input", ["lr", "coarse"])
def test_prior_branch_reads_the_lr_face_by_default(graph, val_faces, prior_input):
    """The thesis's independent branches: the parsing maps do not depend on the SR branch, so
    L_parsing trains the prior branch only. FSRNet's chain (--prior_input coarse) feeds the
    coarse SR into it."""
    lr = tf.constant(np.stack([data.bicubic_downscale(f) for f in val_faces[:2]]), tf.float32)
    out = prior_guided.generator(lr, design=prior_guided.Design(prior_input=prior_input))
    grads = tf.gradients(tf.reduce_sum(out.parsing), sr_branch_vars())
    assert all(g is None for g in grads) == (prior_input == "lr")
    assert all(g is not None for g in tf.gradients(tf.reduce_sum(out.rgb), sr_branch_vars()))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        before = sess.run(out.parsing)
        sess.run([tf.assign(v, 2 * v) for v in sr_branch_vars()])
        after = sess.run(out.parsing)
    assert np.array_equal(before, after) == (prior_input == "lr")


def test_lr_upscale_is_tf1_bicubic(graph, val_faces):
    """The prior branch's MatMul upscale equals the tf.compat.v1 bicubic resize the models
    were trained with (on real LR faces)."""
    lr = tf.constant(np.stack([data.bicubic_downscale(f) for f in val_faces[:2]]), tf.float32)
    design = prior_guided.Design()
    got = prior_guided.prior_input(lr, None, design)
    want = tf.image.resize(lr, [128, 128], "bicubic")
    with tf.Session() as sess:
        got, want = sess.run([got, want])
    assert got.shape == (2, 128, 128, 3) and want.std() > 20
    np.testing.assert_allclose(got, want, atol=1e-3)


def test_residual_block_is_srresnets_with_batch_norm(graph, val_faces):
    """conv, BN, ReLU, conv, BN, + input: with batch statistics (training) each BN output has
    zero mean and unit variance per channel, so the block adds a normalised residual; numpy
    recomputes it from the first conv's output."""
    x = model.conv(tf.constant(val_faces[:4].astype(np.float32) / 127.5 - 1), 8, "in")
    y = prior_guided.residual_block(x, "res", training=True)
    conv2 = graph.get_tensor_by_name("res/conv2/BiasAdd:0")
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        x_val, y_val, c2 = sess.run([x, y, conv2])
    norm = (c2 - c2.mean(axis=(0, 1, 2))) / np.sqrt(c2.var(axis=(0, 1, 2)) + jeanet.BN_EPSILON)
    np.testing.assert_allclose(y_val, x_val + norm, atol=1e-3)
    assert len(tf.get_collection(tf.GraphKeys.UPDATE_OPS, "res")) == 2 * 2


def test_design_is_saved_and_read_back(tmp_path, graph):
    design = prior_guided.Design(prior_input="coarse", se_relu=True, l_vgg="facenet")
    assert prior_guided.Design.parse(design.text()) == design
    prior_guided.generator(tf.zeros([1, 16, 16, 3]), design=design)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        prefix = checkpoints.generator_saver().save(sess, str(tmp_path / "G"))
    assert prior_guided.design_of(prefix) == design
    opt = TestOptions().parse(["--model", "prior_guided"], verbose=False)
    resolved, notes = generators.trained_options(opt, prefix)
    assert (resolved.prior_input, resolved.se_relu, resolved.block_skip, resolved.no_res_bn) == \
        ("coarse", True, False, False)
    assert any("--prior_input coarse" in n for n in notes)


def test_landmark_maps_are_the_thesis_classes(val_faces):
    """Section 4.1's "jawline, eyebrows, eyes, nose, mouth and ears" as 11 maps; from dlib's 68
    landmarks every class but the ears is drawn where it belongs on real faces."""
    assert parsing.CLASSES == THESIS_CLASSES and parsing.EMPTY_FROM_LANDMARKS == (
        "left_ear", "right_ear")
    detected = 0
    for face in val_faces[:6]:
        pts = parsing.landmarks(face)
        if pts is None:
            continue
        detected += 1
        maps = parsing.landmark_maps(pts)
        assert maps.shape == (128, 128, 11) and maps.dtype == np.uint8
        area = {name: int((maps[..., i] > 127).sum()) for i, name in enumerate(parsing.CLASSES)}
        assert all(area[n] > 20 for n in THESIS_CLASSES[:-2]), area
        assert area["left_ear"] == area["right_ear"] == 0
        assert 3000 < area["jawline"] < 9000
        c = {n: centroid(maps[..., parsing.C[n]]) for n in THESIS_CLASSES[:-2]}
        for side in ("left", "right"):
            assert c[f"{side}_brow"][0] < c[f"{side}_eye"][0] < c["nose"][0] < c["upper_lip"][0]
        assert c["upper_lip"][0] < c["inner_mouth"][0] < c["lower_lip"][0] + 2
        # the subject's left is on the image's right
        assert c["left_eye"][1] > c["nose"][1] > c["right_eye"][1]
        assert c["left_eye"][1] > c["right_eye"][1] + 20
        # the jawline region's lowest rows follow the jaw landmarks 0-16 (chin = 8)
        rows = np.nonzero(maps[..., parsing.C["jawline"]].max(axis=1) > 127)[0]
        assert abs(rows.max() - pts[8, 1]) < 2
        top, right, bottom, left = metrics.face_box(face)
        for n in EYES_NOSE_MOUTH:
            assert top <= c[n][0] <= bottom and left <= c[n][1] <= right, (n, c[n])
        # at most one part per pixel away from anti-aliased edges; background is no part
        assert np.mean(maps.sum(axis=2, dtype=int) < 257) > 0.97
        picture = parsing.colorize(maps)
        assert (picture[0, 0] == 0).all() and (picture[tuple(c["nose"].astype(int))] ==
                                               parsing.PALETTE[1 + parsing.C["nose"]]).all()
    assert detected >= 5


def test_mirror_matches_the_maps_of_the_flipped_face(val_faces):
    face = val_faces[0]
    mirrored = parsing.landmark_maps(parsing.landmarks(face))[:, ::-1][..., list(parsing.MIRROR)]
    flipped = parsing.landmark_maps(parsing.landmarks(np.ascontiguousarray(face[:, ::-1])))
    for n in EYES_NOSE_MOUTH + ("left_brow", "right_brow"):
        i = parsing.C[n]
        assert np.linalg.norm(centroid(mirrored[..., i]) - centroid(flipped[..., i])) < 2, n


def test_cache_computed_once_and_faceless_images_warned(tmp_path, train_paths):
    faces = copy_faces(train_paths[:1], tmp_path / "train")
    blank = faces / "blank.png"
    cv2.imwrite(str(blank), np.full((128, 128, 3), 128, np.uint8))
    face, paths = data.list_images(str(faces))[0], data.list_images(str(faces))
    cache = tmp_path / "cache"
    with pytest.warns(UserWarning, match="1 of 2 training images have no detected face"):
        maps = parsing.PartMaps(str(cache)).prepare(paths)
    assert (cache / "no_face.txt").read_text() == "blank.png\n"
    assert not maps(str(blank)).any() and maps(face).max() == 255
    stamp = (cache / "blank.npz").stat().st_mtime_ns
    with pytest.warns(UserWarning, match="1 of 2"):
        parsing.PartMaps(str(cache)).prepare(paths)          # cached: nothing recomputed
    assert (cache / "blank.npz").stat().st_mtime_ns == stamp
    with pytest.raises(data.DataError, match="choose another --parsing_cache"):
        parsing.PartMaps(str(cache), "celeba")


def test_celebamask_style_masks(tmp_path, train_paths):
    """`12.jpg` takes its parts from `<masks>/<k>/00012_<part>.png` at 512 px: l_ear and r_ear
    become the ear maps, skin the jawline map (less the parts over it), hair and neck are not
    among the thesis's classes."""
    faces = tmp_path / "train"
    faces.mkdir()
    cv2.imwrite(str(faces / "12.jpg"), cv2.imread(train_paths[0]))
    masks = tmp_path / "masks" / "0"
    masks.mkdir(parents=True)
    parts = {name: np.zeros((512, 512), np.uint8)
             for name in ("l_eye", "l_ear", "r_ear", "skin", "hair", "neck")}
    parts["l_eye"][200:240, 280:360] = 255
    parts["l_ear"][200:320, 440:480] = 255
    parts["r_ear"][200:320, 32:72] = 255
    parts["skin"][120:440, 80:440] = 255
    parts["hair"][:100] = 255
    parts["neck"][440:] = 255
    for name, mask in parts.items():
        cv2.imwrite(str(masks / f"00012_{name}.png"), mask)
    maps = parsing.PartMaps(str(tmp_path / "cache"), masks_dir=str(tmp_path / "masks")).prepare(
        [str(faces / "12.jpg")])(str(faces / "12.jpg"))
    area = {n: int((maps[..., parsing.C[n]] > 127).sum()) for n in parsing.CLASSES}
    assert area["left_eye"] == 20 * 10 and maps[50:60, 70:90, parsing.C["left_eye"]].min() == 255
    assert area["left_ear"] == area["right_ear"] == 30 * 10
    assert maps[50:80, 110:120, parsing.C["left_ear"]].min() == 255
    assert maps[50:80, 8:18, parsing.C["right_ear"]].min() == 255
    assert area["jawline"] == 80 * 90 - 20 * 10   # skin less the eye drawn over it
    assert maps[50:60, 70:90, parsing.C["jawline"]].max() == 0
    assert area["nose"] == 0 and maps.max(axis=2)[:25].max() == 0   # hair ignored


def test_per_model_defaults_and_checks():
    pg = TrainOptions().parse(["--model", "prior_guided"], verbose=False)
    assert (pg.optimizer, pg.losses, pg.learning_rate) == ("rmsprop", ["coarse", "parsing",
                                                                        "final"], 1e-4)
    assert (pg.degradation, pg.prior_input, pg.se_relu, pg.block_skip, pg.no_res_bn) == \
        ("bicubic", "lr", False, False, False)
    assert generators.prior_guided_design(pg) == prior_guided.Design()
    gan = TrainOptions().parse(["--model", "prior_guided_gan"], verbose=False)
    assert generators.prior_guided_design(gan).l_vgg == "facenet"
    assert gan.losses == ["coarse", "parsing", "final", "vgg", "ad"] and gan.optimizer == "rmsprop"
    assert (gan.gan_start, gan.ad_r, gan.alpha_content, gan.vgg19_weights) == (0, 1e-3, 1.0, None)
    eipnet = TrainOptions().parse([], verbose=False)
    assert (eipnet.optimizer, eipnet.degradation) == ("adam", "bilinear_chain")
    assert generators.GENERATORS["prior_guided_gan"].title == "Prior-guided GAN"
    assert TestOptions().parse(["--model", "prior_guided"], verbose=False).degradation == "bicubic"
    with pytest.raises(ValueError, match="prior branch"):
        train.check_inputs(TrainOptions().parse(["--losses", "rgb,parsing"], verbose=False))


def batch_with_maps(paths, cache) -> data.Example:
    maps = parsing.PartMaps(str(cache)).prepare(paths)
    return data.stack([data.make_example(data.read_image(p), parts=maps(p),
                                         degradation="bicubic") for p in paths])


def test_rmsprop_is_pytorchs_update_rule(graph, val_faces):
    """train.RMSProp against numpy's v = alpha v + (1 - alpha) g^2 (v from 0), w -= lr g /
    (sqrt(v) + eps), alpha 0.99, eps 1e-8 (torch.optim.RMSprop's defaults): 5 steps of a
    linear map fitted to real pixels, the learning rate halved after step 2 as train.py's
    piecewise schedule does."""
    rng = np.random.default_rng(0)
    x = val_faces[:4].reshape(4, -1)[:, :48].astype(np.float64) / 255
    t = val_faces[4:8].reshape(4, -1)[:, :3].astype(np.float64) / 255
    w0 = rng.normal(0, 0.1, (48, 3))
    step = tf.train.get_or_create_global_step()
    rate = tf.train.piecewise_constant(step, [np.int64(2)], [0.01, 0.005])
    w = tf.get_variable("w", initializer=w0.astype(np.float32))
    loss = tf.reduce_sum(tf.square(tf.constant(x, tf.float32) @ w - t))
    update = train.RMSProp(rate).minimize(loss, step)
    start, got = w0.copy(), []
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(5):
            sess.run(update)
            got.append(sess.run(w))
    v, want = np.zeros_like(w0), []
    for k in range(5):
        g = 2 * x.T @ (x @ w0 - t)
        v = 0.99 * v + 0.01 * g * g
        w0 = w0 - (0.01 if k <= 2 else 0.005) * g / (np.sqrt(v) + 1e-8)
        want.append(w0)
    np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-4, atol=1e-6)
    assert np.abs(want[-1] - start).min() > 0.01   # every weight moved: all steps were checked


def test_rmsprop_steps_lower_eq_3_8(tmp_path, train_paths):
    opt = TrainOptions().parse(["--model", "prior_guided", "--batchSize", "2"], verbose=False)
    batch = batch_with_maps(train_paths[:2], tmp_path)
    assert batch.parsing.shape == (2, 128, 128, 11) and batch.parsing.max() == 1.0
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        g = train.build_train_graph(opt)
        assert set(g.terms) == {"coarse", "parsing", "final"} and g.train_d is None
        rms = [v for v in tf.global_variables() if v.op.name.endswith("/RMSProp")]   # v
        assert len(rms) == len(tf.trainable_variables("generator"))
        with tf.Session(config=session_config()) as sess:
            sess.run(tf.global_variables_initializer())
            assert not sess.run(rms[0]).any()   # mean square from 0, as PyTorch's
            values = [sess.run([g.terms, g.total, g.train_g], train.feed(g, batch))[:2]
                      for _ in range(4)]
    totals = [total for _, total in values]
    assert np.all(np.isfinite(totals)) and totals[-1] < 0.9 * totals[0], totals
    assert values[-1][0]["parsing"] < values[0][0]["parsing"]


def test_gan_steps_with_facenet_features(tmp_path, train_paths, capsys):
    opt = TrainOptions().parse(["--model", "prior_guided_gan", "--batchSize", "1"], verbose=False)
    batch = batch_with_maps(train_paths[2:3], tmp_path)
    with tf.Graph().as_default():
        g = train.build_train_graph(opt)
        assert perceptual.STAND_IN in capsys.readouterr().out
        assert set(g.terms_gan) == {"coarse", "parsing", "final", "vgg", "ad"}
        moving = tf.get_collection(tf.GraphKeys.MOVING_AVERAGE_VARIABLES, "discriminator")[0]
        with tf.Session(config=session_config()) as sess:
            sess.run(tf.global_variables_initializer())
            before = sess.run(moving)
            d_loss, _ = sess.run([g.d_loss, g.train_d], train.feed(g, batch))
            terms, _ = sess.run([g.terms_gan, g.train_g_gan], train.feed(g, batch))
            assert not np.allclose(sess.run(moving), before)   # D's batch-norm updates ran
    assert np.isfinite(d_loss) and all(np.isfinite(v) for v in terms.values())
    assert terms["vgg"] > 0


def test_method_2_train_then_test_end_to_end(tmp_path, train_paths, val_paths):
    """train.py then test.py on method 2: the log and test.py's summary both say that L_vgg used
    the FaceNet stand-in, and the design is saved beside the weights."""
    run = two_step_run("prior_guided_gan", tmp_path, train_paths, val_paths, n_train=2, batch=1)
    val = tmp_path / "val"
    assert "optimizer: rmsprop" in (run / "opt.txt").read_text()
    log = (run / "loss_log.txt").read_text()
    assert f"L_vgg features: facenet ({perceptual.STAND_IN})" in log and "step 2: coarse" in log
    assert len(list((run / "parsing").glob("*.npz"))) == 2   # the default cache
    saved = dict(tf.train.list_variables(str(run / "G_weight.ckpt")))
    assert "generator/prior_branch/parsing/w" in saved and "generator/design" in saved
    assert not any("RMSProp" in name for name in saved)
    assert prior_guided.design_of(str(run / "G_weight.ckpt")) == prior_guided.Design(
        l_vgg="facenet")

    argv = ["--model", "prior_guided_gan", "--weight_path", str(run), "--test_path", str(val),
            "--result_dir", str(tmp_path / "result"), "--metrics", "psnr"]
    summary = test_script.main(argv)
    assert summary["images"]["scored"] == 1 and summary["complexity"]["params"] == PARAMS
    assert summary["complexity"]["gmacs"] == pytest.approx(GMACS, abs=1e-3)
    assert (summary["l_vgg"], summary["degradation"]) == ("facenet", "bicubic")
    text = (tmp_path / "result" / "summary.md").read_text()
    assert text.startswith("# Prior-guided GAN evaluation") and "LR by bicubic" in text
    assert f"L_vgg in training: {perceptual.STAND_IN}, not VGG19" in text
    stem = os.path.splitext(os.path.basename(val_paths[0]))[0]
    coarse = data.read_image(str(tmp_path / "result" / f"{stem}_coarse.png"))
    picture = data.read_image(str(tmp_path / "result" / f"{stem}_parsing.png"))
    assert coarse.shape == picture.shape == (128, 128, 3)
    # every pixel of the parsing picture is background or one class's palette colour
    assert {tuple(p) for p in picture.reshape(-1, 3)} <= {tuple(c) for c in parsing.PALETTE}
    assert (tmp_path / "result" / f"{stem}_compare.png").is_file()
    assert not list((tmp_path / "result").glob("*_edge*.png"))
