"""The prior-guided network (--model prior_guided, prior_guided_gan): graph shapes and size, the
basic block, the landmark-to-parsing step on real faces, mask files and the cache, the per-model
defaults, RMSProp steps lowering Eq 3.8, a GAN step with L_vgg, and train.py + test.py."""
import json
import os

import cv2
import numpy as np
import pytest

import data
import generators
import metrics
import model
import parsing
import prior_guided
import test as test_script
import train
from conftest import copy_faces, two_step_run
from options.test_options import TestOptions
from options.train_options import TrainOptions
from tf1 import session_config, tf

PARAMS = 3_017_105      # generator, trainable
GMACS = 4.582           # generator convolutions of one 16 -> 128 image
D_PARAMS = 38_245_569   # Table 3.4's discriminator at 128 px (33.6M of it in dense 1024)
EYES_NOSE_MOUTH = ("left_eye", "right_eye", "nose", "upper_lip", "inner_mouth", "lower_lip")


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
            "generator/fusing/res/conv2/w", "generator/RGB/w"} <= names
    logits = prior_guided.discriminator(out.rgb, training=True)
    assert logits.shape.as_list() == [1, 1]
    assert model.count_params("discriminator") == D_PARAMS
    assert len(tf.get_collection(tf.GraphKeys.UPDATE_OPS, "discriminator")) == 2 * 7


def test_basic_block_dilated_field_and_softmax_excitation(graph):
    x = tf.random.normal([2, 8, 8, 16], seed=1)
    y = prior_guided.basic_block(x, "block")
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


def test_landmark_maps_land_on_the_parts(val_faces):
    detected = 0
    for face in val_faces[:6]:
        pts = parsing.landmarks(face)
        if pts is None:
            continue
        detected += 1
        maps = parsing.landmark_maps(pts)
        assert maps.shape == (128, 128, 11) and maps.dtype == np.uint8
        area = {name: int((maps[..., i] > 127).sum()) for i, name in enumerate(parsing.CLASSES)}
        assert all(area[n] > 20 for n in parsing.CLASSES[:-1]) and area["hair"] == 0, area
        assert 3000 < area["skin"] < 9000 and area["background"] > 6000
        c = {n: centroid(maps[..., parsing.C[n]]) for n in parsing.CLASSES[1:-1]}
        for side in ("left", "right"):
            assert c[f"{side}_brow"][0] < c[f"{side}_eye"][0] < c["nose"][0] < c["upper_lip"][0]
        assert c["upper_lip"][0] < c["inner_mouth"][0] < c["lower_lip"][0] + 2
        # the subject's left is on the image's right
        assert c["left_eye"][1] > c["nose"][1] > c["right_eye"][1]
        assert c["left_eye"][1] > c["right_eye"][1] + 20
        top, right, bottom, left = metrics.face_box(face)
        for n in EYES_NOSE_MOUTH:
            assert top <= c[n][0] <= bottom and left <= c[n][1] <= right, (n, c[n])
        # one class per pixel: the maps add up to 255 away from anti-aliased edges
        assert np.mean(np.abs(maps.sum(axis=2, dtype=int) - 255) < 2) > 0.97
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
    """`12.jpg` takes its parts from `<masks>/<k>/00012_<part>.png` at 512 px."""
    faces = tmp_path / "train"
    faces.mkdir()
    cv2.imwrite(str(faces / "12.jpg"), cv2.imread(train_paths[0]))
    masks = tmp_path / "masks" / "0"
    masks.mkdir(parents=True)
    eye, hair = np.zeros((512, 512), np.uint8), np.zeros((512, 512), np.uint8)
    eye[200:240, 280:360] = 255
    hair[:100] = 255
    cv2.imwrite(str(masks / "00012_l_eye.png"), eye)
    cv2.imwrite(str(masks / "00012_hair.png"), hair)
    cv2.imwrite(str(masks / "00012_neck.png"), eye)   # not one of the 11 classes
    maps = parsing.PartMaps(str(tmp_path / "cache"), masks_dir=str(tmp_path / "masks")).prepare(
        [str(faces / "12.jpg")])(str(faces / "12.jpg"))
    assert (maps[..., parsing.C["left_eye"]] > 127).sum() == 20 * 10
    assert maps[50:60, 70:90, parsing.C["left_eye"]].min() == 255
    assert (maps[..., parsing.C["hair"]] > 127).sum() == 25 * 128
    background = maps[..., parsing.C["background"]]
    assert background[50:60, 70:90].max() == 0 and background[100:, :].min() == 255
    assert not maps[..., parsing.C["skin"]].any()


def test_per_model_defaults_and_checks():
    pg = TrainOptions().parse(["--model", "prior_guided"], verbose=False)
    assert (pg.optimizer, pg.losses, pg.learning_rate) == ("rmsprop", ["coarse", "parsing",
                                                                        "final"], 1e-4)
    gan = TrainOptions().parse(["--model", "prior_guided_gan"], verbose=False)
    assert gan.losses == ["coarse", "parsing", "final", "vgg", "ad"] and gan.optimizer == "rmsprop"
    assert (gan.gan_start, gan.ad_r, gan.alpha_content, gan.vgg19_weights) == (0, 1e-3, 1.0, None)
    assert TrainOptions().parse([], verbose=False).optimizer == "adam"
    assert generators.GENERATORS["prior_guided_gan"].title == "Prior-guided GAN"
    assert TestOptions().parse(["--model", "prior_guided"], verbose=False).model == "prior_guided"
    with pytest.raises(ValueError, match="prior branch"):
        train.check_inputs(TrainOptions().parse(["--losses", "rgb,parsing"], verbose=False))


def batch_with_maps(paths, cache) -> data.Example:
    maps = parsing.PartMaps(str(cache)).prepare(paths)
    return data.stack([data.make_example(data.read_image(p), parts=maps(p)) for p in paths])


def test_rmsprop_steps_lower_eq_3_8(tmp_path, train_paths):
    opt = TrainOptions().parse(["--model", "prior_guided", "--batchSize", "2"], verbose=False)
    batch = batch_with_maps(train_paths[:2], tmp_path)
    assert batch.parsing.shape == (2, 128, 128, 11) and batch.parsing.max() == 1.0
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        g = train.build_train_graph(opt)
        assert set(g.terms) == {"coarse", "parsing", "final"} and g.train_d is None
        rms = [v for v in tf.global_variables() if v.op.name.endswith("/RMSProp")]
        assert len(rms) == len(tf.trainable_variables("generator"))
        with tf.Session(config=session_config()) as sess:
            sess.run(tf.global_variables_initializer())
            assert not sess.run(rms[0]).any()   # mean square from 0, unlike TF1's RMSProp
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
        assert "FaceNet's block35 feature maps" in capsys.readouterr().out
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


def test_train_then_test_end_to_end(tmp_path, train_paths, val_paths):
    run = two_step_run("prior_guided", tmp_path, train_paths, val_paths, n_train=2, batch=1)
    val = tmp_path / "val"
    assert "optimizer: rmsprop" in (run / "opt.txt").read_text()
    assert "step 2: coarse" in (run / "loss_log.txt").read_text()
    assert len(list((run / "parsing").glob("*.npz"))) == 2   # the default cache
    saved = dict(tf.train.list_variables(str(run / "G_weight.ckpt")))
    assert "generator/prior_branch/parsing/w" in saved
    assert not any("RMSProp" in name for name in saved)

    argv = ["--model", "prior_guided", "--weight_path", str(run), "--test_path", str(val),
            "--result_dir", str(tmp_path / "result"), "--metrics", "psnr"]
    summary = test_script.main(argv)
    assert summary["images"]["scored"] == 1 and summary["complexity"]["params"] == PARAMS
    assert summary["complexity"]["gmacs"] == pytest.approx(GMACS, abs=1e-3)
    assert json.loads((tmp_path / "result" / "summary.json").read_text())["model"] == "prior_guided"
    assert (tmp_path / "result" / "summary.md").read_text().startswith("# Prior-guided evaluation")
    stem = os.path.splitext(os.path.basename(val_paths[0]))[0]
    coarse = data.read_image(str(tmp_path / "result" / f"{stem}_coarse.png"))
    picture = data.read_image(str(tmp_path / "result" / f"{stem}_parsing.png"))
    assert coarse.shape == picture.shape == (128, 128, 3)
    # every pixel of the parsing picture is one class's palette colour
    assert {tuple(p) for p in picture.reshape(-1, 3)} <= {tuple(c) for c in parsing.PALETTE}
    assert (tmp_path / "result" / f"{stem}_compare.png").is_file()
    assert not list((tmp_path / "result").glob("*_edge*.png"))
