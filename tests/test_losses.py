"""Each loss term against an independent numpy/OpenCV computation on real faces."""
import collections

import cv2
import numpy as np
import pytest

from conftest import identity_of
import data
import losses
from networks.identity import IdentityNet, embed
from options.test_options import TestOptions
from tf1 import tf

pytestmark = pytest.mark.cpu_numbers   # reruns under tools/avx2_caps.py in .ci/run


@pytest.fixture(scope="module")
def pair(val_paths):
    """Real HR faces and their bicubic 8x reconstructions (a realistic SR stand-in)."""
    _, ex = data.load_eval_set(val_paths[:4])
    bic = np.stack([cv2.resize(x, (128, 128), interpolation=cv2.INTER_CUBIC) for x in ex.lr])
    return bic.astype(np.float32), ex


def run(tensor):
    with tf.Session() as sess:
        return sess.run(tensor)


def test_l_rgb_eq9_sums_channels(graph, pair):
    sr, ex = pair
    sq = (sr.astype(np.float64) - ex.hr) ** 2
    want = sq.sum(-1).mean()   # Eq 9: 1/(wh) sum over c, x, y
    assert run(losses.l_rgb(tf.constant(sr), tf.constant(ex.hr))) == pytest.approx(want, rel=1e-5)
    assert run(losses.l_rgb(tf.constant(sr), tf.constant(ex.hr), "authors")) == pytest.approx(
        sq.mean(), rel=1e-5)   # the authors' tf.reduce_mean
    assert want > 150
    with pytest.raises(ValueError, match="loss normalisation"):
        losses.l_rgb(tf.constant(sr), tf.constant(ex.hr), "sum")


def test_l_lc_uses_eq7_yuv(graph, pair):
    sr, ex = pair
    def yuv(x):
        r, g, b = (x[..., i].astype(np.float64) for i in range(3))
        return np.stack([0.299 * r + 0.587 * g + 0.114 * b,
                         -0.14713 * r - 0.28886 * g + 0.436 * b,
                         0.615 * r - 0.51499 * g - 0.10001 * b], -1)
    sq = (yuv(sr) - yuv(ex.hr)) ** 2
    assert run(losses.l_lc(tf.constant(sr), tf.constant(ex.hr))) == pytest.approx(
        sq.sum(-1).mean(), rel=1e-5)   # Eq 8: summed over Y, U, V
    assert run(losses.l_lc(tf.constant(sr), tf.constant(ex.hr), "authors")) == pytest.approx(
        sq.mean(), rel=1e-5)
    # the authors' tf.image.rgb_to_yuv agrees with Eq 7 to the printed digits
    np.testing.assert_allclose(run(tf.image.rgb_to_yuv(tf.constant(ex.hr))), yuv(ex.hr),
                               atol=0.02)


def test_l_e_against_opencv_canny(graph, pair, val_paths):
    _, ex = pair
    hr8 = ex.hr.astype(np.uint8)
    # independent targets: OpenCV Canny (paper thresholds 100/255) on the bilinear chain
    targets = []
    for size in (32, 64, 128):
        imgs = hr8
        for s in (64, 32)[:{128: 0, 64: 1, 32: 2}[size]]:
            imgs = np.stack([cv2.resize(i, (s, s), interpolation=cv2.INTER_LINEAR) for i in imgs])
        gray = [cv2.cvtColor(i, cv2.COLOR_RGB2GRAY) for i in imgs]
        targets.append(np.stack([cv2.Canny(g, 100, 255) for g in gray])[..., None] / 1.0)
    for ours, want in zip(ex.edges, targets):
        np.testing.assert_array_equal(ours, want)
    rng = np.random.default_rng(0)
    maps = [rng.uniform(0, 255, t.shape).astype(np.float32) for t in targets]
    want = sum(np.mean((m - t) ** 2) for m, t in zip(maps, targets))
    got = run(losses.l_e([tf.constant(m) for m in maps], [tf.constant(t) for t in ex.edges]))
    assert got == pytest.approx(want, rel=1e-5)
    # a switched-off edge block drops its scale
    got2 = run(losses.l_e([None, tf.constant(maps[1]), tf.constant(maps[2])],
                          [tf.constant(t) for t in ex.edges]))
    assert got2 == pytest.approx(want - np.mean((maps[0] - targets[0]) ** 2), rel=1e-5)
    # JEANet's Eq 7: each scale's term times 1/r, r = 4, 2, 1 at 32, 64, 128 px
    r = (4, 2, 1)
    want_r = sum(np.mean((m - t) ** 2) / k for m, t, k in zip(maps, targets, r))
    got_r = run(losses.l_e([tf.constant(m) for m in maps], [tf.constant(t) for t in ex.edges],
                           [1 / k for k in r]))
    assert got_r == pytest.approx(want_r, rel=1e-5) and got_r < 0.8 * got


def sobel_l1(gray: np.ndarray) -> np.ndarray:
    """|gx| + |gy| of the 3x3 Sobel filters in numpy, OpenCV's reflect-101 border."""
    p = np.pad(gray.astype(np.float64), 1, mode="reflect")
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    return np.abs(gx) + np.abs(gy)


def test_canny_modes(val_faces):
    img = val_faces[0]
    paper, authors = data.canny(img, "paper"), data.canny(img, "authors")
    assert set(np.unique(paper)) <= {0.0, 255.0}
    assert (authors > 0).sum() > (paper > 0).sum() > 0   # lower threshold, more edges


@pytest.mark.parametrize("face", range(4))
def test_adaptive_canny_k_of_section_3_1(val_faces, face):
    """Eq 1-2 with k = 1.6 ('adaptive') and the sentence's k = 1.2 for T_l, 1.6 for T_h
    ('adaptive_k'), m and sigma of the Sobel magnitude that cv2.Canny thresholds."""
    img = val_faces[face]
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    mag = sobel_l1(gray)
    m, sigma = mag.mean(), mag.std()
    assert data.CANNY_K == (1.2, 1.6)
    assert TestOptions().parse([], verbose=False).canny_k == [1.2, 1.6]
    want = {"adaptive": ((m + 1.6 * sigma) / 2, m + 1.6 * sigma),
            "adaptive_k": (m + 1.2 * sigma, m + 1.6 * sigma)}
    for mode, (t_l, t_h) in want.items():
        assert data.canny_thresholds(gray, mode) == pytest.approx((t_l, t_h), rel=1e-5)
        np.testing.assert_array_equal(data.canny(img, mode)[..., 0], cv2.Canny(gray, t_l, t_h))
    assert 40 < want["adaptive"][0] < want["adaptive_k"][0] < want["adaptive_k"][1] < 400
    # T_l = T_h / 2 keeps more weak edges than T_l = m + 1.2 sigma
    assert (data.canny(img, "adaptive") > 0).sum() > (data.canny(img, "adaptive_k") > 0).sum()
    # another k moves the thresholds
    assert data.canny_thresholds(gray, "adaptive_k", (1.0, 2.0)) == pytest.approx(
        (m + sigma, m + 2 * sigma), rel=1e-5)


def np_js(p, q):
    m = (p + q) / 2
    kl = lambda a, b: np.sum(a * np.log(a / b), -1)
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.fixture(scope="module")
def identity_vectors(val_paths):
    """FaceNet bottleneck vectors of 2 photos each of 6 val identities."""
    by_id = collections.defaultdict(list)
    for p in val_paths:
        by_id[identity_of(p)].append(p)
    chosen = [ps[:2] for ps in by_id.values() if len(ps) >= 2][:6]
    images = np.stack([data.read_image(p) for ps in chosen for p in ps]).astype(np.float32)
    with tf.Graph().as_default():
        ph = tf.placeholder(tf.float32, [None, 128, 128, 3])
        vec = IdentityNet(vector="bottleneck")(ph)
        assert not tf.global_variables()   # frozen: nothing to train or save
        with tf.Session() as sess:
            return embed(sess, vec, ph, images)


def test_l_id_matches_numpy_and_separates_identities(graph, identity_vectors):
    v = identity_vectors
    a, b = tf.placeholder(tf.float32, [None, 512]), tf.placeholder(tf.float32, [None, 512])
    lid = losses.l_id(a, b)
    with tf.Session() as sess:
        same = [sess.run(lid, {a: v[i:i + 1], b: v[i + 1:i + 2]}) for i in range(0, len(v), 2)]
        diff = [sess.run(lid, {a: v[i:i + 1], b: v[(i + 3) % len(v):(i + 3) % len(v) + 1]})
                for i in range(0, len(v), 2)]
        self_ = sess.run(lid, {a: v[0::2], b: v[0::2]})
        batch = sess.run(lid, {a: v[0::2], b: v[1::2]})
    assert self_ == pytest.approx(0.0, abs=1e-6)
    assert batch == pytest.approx(np.mean(np_js(softmax(v[0::2]), softmax(v[1::2]))), rel=1e-4)
    assert np.mean(same) < 0.7 * np.mean(diff)


def test_l_id_gradient_reaches_sr_only(graph, val_faces):
    sr = tf.Variable(val_faces[:2].astype(np.float32))
    hr = tf.Variable(val_faces[2:4].astype(np.float32))
    net = IdentityNet()
    lid = losses.l_id(net(sr, "a"), net(hr, "b"))
    g_sr, g_hr = tf.gradients(lid, [sr, hr])
    assert g_hr is None
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert np.abs(sess.run(g_sr)).max() > 0


def test_l_ad_and_total(graph):
    real, fake = np.array([[2.0], [-1.0]]), np.array([[0.5], [-3.0]])
    bce = lambda x, y: np.mean(np.maximum(x, 0) - x * y + np.log1p(np.exp(-abs(x))))
    g = losses.l_ad_g(tf.constant(fake))
    d = losses.l_ad_d(tf.constant(real), tf.constant(fake))
    assert run(g) == pytest.approx(bce(fake, 1), rel=1e-6)
    assert run(d) == pytest.approx(bce(real, 1) + bce(fake, 0), rel=1e-6)
    terms = {"rgb": tf.constant(3.0), "edge": tf.constant(2.0), "id": tf.constant(0.5)}
    weights = {"edge": 0.3, "id": 20.0, "ad": 5e-3}
    assert run(losses.total(terms, weights)) == pytest.approx(3 + 0.6 + 10)
