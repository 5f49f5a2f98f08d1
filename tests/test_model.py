"""Generator, edge block and discriminator: shapes, sizes, the authors' weights."""
import numpy as np
import pytest

import checkpoints
from conftest import OFFICIAL, ROOT
import model
from tf1 import tf
from tools.benchmark import GEN_GMAC

pytestmark = pytest.mark.cpu_numbers   # reruns under tools/avx2_caps.py in .ci/run


def test_generator_shapes_params_and_macs(graph):
    lr = tf.placeholder(tf.float32, [1, 16, 16, 3])
    out = model.generator(lr)
    assert out.rgb.shape.as_list() == [1, 128, 128, 3]
    assert [e.shape.as_list() for e in out.edges] == [[1, 32, 32, 1], [1, 64, 64, 1],
                                                      [1, 128, 128, 1]]
    assert model.count_params("generator") == 11_915_654   # Table 1's 3x3 conv4: 11.92M
    assert model.count_macs(out.rgb) / 1e9 == pytest.approx(GEN_GMAC[8], abs=1e-3)


def test_scale_4_is_table_1_without_its_first_step(graph):
    """32x32 -> 128x128 through Step2 and Step3 only, named as in the 8x graph, with the edge
    maps at 64 and 128 px; the benchmark's GMAC figure is this graph's."""
    out = model.generator(tf.placeholder(tf.float32, [1, 32, 32, 3]), scale=4)
    assert out.rgb.shape.as_list() == [1, 128, 128, 3]
    assert out.edges[0] is None
    assert [e.shape.as_list() for e in out.edges[1:]] == [[1, 64, 64, 1], [1, 128, 128, 1]]
    names = {v.op.name.split("/")[1] for v in tf.trainable_variables("generator")}
    assert names == {"Conv1", "Step2_1", "Step2_2", "Step2_de", "Step2_edge", "Step3_1",
                     "Step3_2", "Step3_de", "Step3_edge", "RGB"}
    # Conv1 is as wide as Step2_2, whose output it is added to
    assert tf.trainable_variables("generator/Conv1/w")[0].shape.as_list() == [3, 3, 3, 256]
    assert model.count_params("generator") == 3_911_557
    assert model.count_macs(out.rgb) / 1e9 == pytest.approx(GEN_GMAC[4], abs=1e-3)


def test_released_tail_and_ablation(graph):
    lr = tf.placeholder(tf.float32, [None, 16, 16, 3])
    out = model.generator(lr, tail="released", edge_blocks=(True, False, True))
    assert tf.trainable_variables("generator/RGB")[0].shape.as_list() == [1, 1, 128, 3]
    with tf.Graph().as_default():   # the full released graph: Table 9's 11.91M
        model.generator(tf.placeholder(tf.float32, [1, 16, 16, 3]), tail="released")
        assert model.count_params("generator") == 11_912_582
    assert out.edges[1] is None
    # without the 64 px edge block Step3_1 sees 128 channels instead of 256
    assert tf.trainable_variables("generator/Step3_1/w")[0].shape.as_list()[2] == 128


def test_official_checkpoint_reproduced(graph):
    ref = np.load(OFFICIAL / "reference.npz")
    prefix = checkpoints.resolve(str(OFFICIAL))
    assert checkpoints.tail_of(checkpoints.variable_shapes(prefix)) == "released"
    lr = tf.placeholder(tf.float32, [None, 16, 16, 3])
    out = model.generator(lr, "released")
    with tf.Session() as sess:
        checkpoints.generator_saver().restore(sess, prefix)
        got = sess.run([out.rgb, *out.edges], {lr: ref["lr"]})
    for name, value in zip(["rgb", "edge1", "edge2", "edge3"], got):
        want = ref[name]
        assert value.shape == want.shape
        assert np.abs(value - want).max() / np.abs(want).max() < 1e-4, name
        assert np.abs(want).max() > 1.0  # the reference is not trivially zero


def box_mean_same(x: np.ndarray, k: int) -> np.ndarray:
    """Numpy SAME average pool (stride 1) dividing by the number of valid cells."""
    before, after = (k - 1) // 2, k // 2
    pad = lambda a: np.pad(a, ((0, 0), (before, after), (before, after), (0, 0)))
    def box(a):
        c = np.cumsum(np.cumsum(pad(a), 1), 2)
        c = np.pad(c, ((0, 0), (1, 0), (1, 0), (0, 0)))
        h, w = x.shape[1:3]
        return c[:, k:k + h, k:k + w] - c[:, :h, k:k + w] - c[:, k:k + h, :w] + c[:, :h, :w]
    return box(x) / box(np.ones_like(x))


@pytest.mark.parametrize("k", [5, 7, 10])
def test_edge_block_matches_numpy(graph, val_faces, k):
    x = val_faces[:2].astype(np.float32)
    edge, joined = model.edge_block(tf.constant(x), k, "edge")
    w, b = tf.trainable_variables("edge")
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        edge, joined, w, b = sess.run([edge, joined, w, b])
    sub = np.maximum(x - box_mean_same(x.astype(np.float64), k), 0)
    np.testing.assert_allclose(joined[..., 3:], sub, rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(joined[..., :3], x)
    want = np.maximum(sub @ w.reshape(3, 1) + b, 0)
    np.testing.assert_allclose(edge, want, rtol=1e-4, atol=1e-3)
    assert sub.max() > 10  # real faces have edges


def test_discriminator_shapes(graph):
    x = tf.placeholder(tf.float32, [2, 128, 128, 3])
    logits = model.discriminator(x)
    assert logits.shape.as_list() == [2, 1]
    # VALID stride-2 convs: 128 -> 63 -> 31 -> 15, so fc 512 sees 15*15*512 inputs
    assert tf.trainable_variables("discriminator/dense/kernel")[0].shape.as_list() == [115200, 512]
    convs = [v for v in tf.trainable_variables("discriminator") if v.name.endswith("/w:0")]
    assert [v.shape.as_list()[-1] for v in convs] == [128, 128, 256, 256, 256, 512, 512]


def fc_input(graph, scope: str) -> tf.Tensor:
    """The tensor the discriminator flattens into its first fc (di_conv4_1's output)."""
    return graph.get_operation_by_name(f"{scope}/Reshape").inputs[0]


def test_discriminator_activation_after_conv4(graph, val_faces):
    """Table 2's caption: LeakyReLU 0.2 after every layer but the last fc ('paper'); the
    authors' code leaves di_conv4_1 linear ('authors'). Same weights, real faces."""
    x = tf.constant(val_faces[:2].astype(np.float32))
    logits = {"authors": model.discriminator(x, variant="authors"),
              "paper": model.discriminator(x, reuse=True)}
    feats = {"authors": fc_input(graph, "discriminator"),
             "paper": fc_input(graph, "discriminator_1")}
    fc = [tf.trainable_variables(f"discriminator/{n}")[0]
          for n in ("dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias")]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got, logits, (w1, b1, w2, b2) = sess.run([feats, logits, fc])
    conv4 = got["authors"].astype(np.float64)
    assert conv4.min() < 0 < conv4.max()          # the activation has something to change
    leaky = lambda a: np.where(a > 0, a, 0.2 * a)
    np.testing.assert_allclose(got["paper"], leaky(conv4), rtol=1e-5, atol=1e-4)
    for variant, feat in (("paper", leaky(conv4)), ("authors", conv4)):
        want = leaky(feat.reshape(2, -1) @ w1 + b1) @ w2 + b2   # fc 512 + LeakyReLU, fc 1
        np.testing.assert_allclose(logits[variant], want, rtol=1e-3, atol=1e-3)
    assert not np.allclose(logits["paper"], logits["authors"])
    with pytest.raises(ValueError, match="discriminator variant"):
        model.discriminator(x, reuse=True, variant="none")


def test_builds_twice_in_one_process():
    for _ in range(2):
        with tf.Graph().as_default():
            lr = tf.placeholder(tf.float32, [None, 16, 16, 3])
            model.generator(lr)
            model.generator(lr, reuse=True)   # shared weights, e.g. a second input
            assert model.count_params("generator") == 11_915_654


def dilated_conv_numpy(x: np.ndarray, w: np.ndarray, rate: int) -> np.ndarray:
    """Independent reference: SAME dilated conv as an explicit sum over kernel taps."""
    k = w.shape[0]
    pad = rate * (k - 1) // 2
    xp = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    h, wd = x.shape[1:3]
    y = np.zeros(x.shape[:3] + (w.shape[3],), np.float64)
    for a in range(k):
        for b in range(k):
            y += xp[:, a * rate:a * rate + h, b * rate:b * rate + wd] @ w[a, b]
    return y


def test_dilated_conv_runs_on_every_cpu_and_matches_numpy(graph, val_faces):
    """The prior-guided block's dilated conv: forward and both gradients against numpy on
    real faces, and no Conv2D with dilation > 1 in the graph (its gradient has no CPU kernel
    without oneDNN, TensorFlow's default on AVX2-only CPUs)."""
    faces = val_faces[:2, ::4, ::4].astype(np.float32) / 255.0          # (2,32,32,3)
    x = tf.constant(faces)
    y = model.conv(x, 4, "wide", relu=False, dilation=2)
    w, b = tf.trainable_variables("wide")
    r = np.random.default_rng(0).normal(size=(2, 32, 32, 4)).astype(np.float32)
    grads = tf.gradients(tf.reduce_sum(y * r), [x, w])
    assert all(list(op.get_attr("dilations")) == [1, 1, 1, 1]
               for op in graph.get_operations() if op.type.startswith("Conv2D"))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(b.assign(np.arange(4, dtype=np.float32)))   # after init: one run has no order
        w_val, y_val, (gx, gw) = sess.run([w, y, grads])
    np.testing.assert_allclose(y_val, dilated_conv_numpy(faces, w_val, 2) + np.arange(4),
                               rtol=1e-4, atol=1e-5)
    # d/dw of sum(y * r): correlate the padded input with r at each tap
    xp = np.pad(faces, [(0, 0), (2, 2), (2, 2), (0, 0)])
    want_gw = np.stack([np.stack([np.einsum("nijc,nijo->co", xp[:, 2 * a:2 * a + 32, 2 * b:2 * b + 32], r)
                                  for b in range(3)]) for a in range(3)])
    np.testing.assert_allclose(gw, want_gw, rtol=1e-4, atol=1e-4)
    # d/dx is the dilated conv of r with the flipped, transposed kernel
    want_gx = dilated_conv_numpy(r, w_val[::-1, ::-1].transpose(0, 1, 3, 2), 2)
    np.testing.assert_allclose(gx, want_gx, rtol=1e-4, atol=1e-4)


def test_one_graph_takes_faces_of_any_size(graph, val_faces):
    """EIPNet is convolutions only (enhance.py's native route): a graph built for any input
    size gives the authors' weights' exact output on 16 px faces; the shipped model's
    Generator.native gives 8n px for real faces of n px, as good as its 16 px SR once both
    are brought to 128 px (within 1 dB; both far above a broken output)."""
    import cv2
    import data
    from evaluation import metrics
    from options.test_options import TestOptions
    from networks.restored import Generator
    ref = np.load(OFFICIAL / "reference.npz")
    any_size = tf.placeholder(tf.float32, [None, None, None, 3])
    out = model.generator(any_size, "released").rgb
    with tf.Session() as sess:
        checkpoints.generator_saver().restore(sess, checkpoints.resolve(str(OFFICIAL)))
        same = sess.run(out, {any_size: ref["lr"]})
    assert np.abs(same - ref["rgb"]).max() / np.abs(ref["rgb"]).max() < 1e-4
    shipped = str(ROOT / "checkpoint" / "eipnet_lfw128")
    gen = Generator(TestOptions().parse(["--weight_path", shipped], verbose=False),
                    checkpoints.resolve(shipped))
    try:
        sr = {n: metrics.to_uint8(gen.native(np.stack([data.area_downscale(f, n)
                                                       for f in val_faces])))
              for n in (16, 21)}
    finally:
        gen.close()
    assert sr[16].shape == (8, 128, 128, 3) and sr[21].shape == (8, 168, 168, 3)
    for big, small, hr in zip(sr[21], sr[16], val_faces):
        scaled = cv2.resize(big, (128, 128), interpolation=cv2.INTER_AREA)
        assert metrics.psnr(scaled, hr) > metrics.psnr(small, hr) - 1.0 > 20
