"""Image-quality and identity metrics of the paper's Section 4.3 (Tables 6-9).

Every image argument is an RGB (H,W,3) array, uint8 or float, on the 0..255 scale; `hr` is the
reference. Face-based metrics take the face box found on the HR image (`face_box`) so that SR
and HR are measured on the same pixels.
"""
from __future__ import annotations

import functools
import time
from types import SimpleNamespace
from typing import Callable, Sequence

import cv2
import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

# TensorFlow is imported only by FaceNet and generator_complexity, so that test.py's metric
# worker processes, which import this module, start without it; dlib's models and BRISQUE
# load on first use, so that a process that does not score them (test.py's main process,
# unless --workers 0) never pays for them.

Box = tuple[int, int, int, int]   # (top, right, bottom, left), face_recognition's order
# HOG upsampling for 128 px faces: 1 finds 352/354 lfw128/val faces, 2 finds 351 at 4x the time.
FACE_UPSAMPLE = 1


def to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def luma(img: np.ndarray) -> np.ndarray:
    """Y of YCbCr (ITU-R BT.601, 16..235) as in BasicSR's test_y_channel protocol."""
    rgb = np.asarray(img, np.float64)
    return rgb @ np.array([65.481, 128.553, 24.966]) / 255.0 + 16.0


def _prepare(sr: np.ndarray, hr: np.ndarray, y_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    if y_channel:
        return luma(sr), luma(hr)
    return np.asarray(sr, np.float64), np.asarray(hr, np.float64)


def psnr(sr: np.ndarray, hr: np.ndarray, y_channel: bool = False) -> float:
    """PSNR in dB (data range 255), on RGB or on Y."""
    sr, hr = _prepare(sr, hr, y_channel)
    return float(peak_signal_noise_ratio(hr, sr, data_range=255))


def ssim(sr: np.ndarray, hr: np.ndarray, y_channel: bool = False) -> float:
    """SSIM of Wang et al. 2004 (11x11 Gaussian window, sigma 1.5, population covariances, as
    in BasicSR and the MATLAB reference), averaged over channels."""
    sr, hr = _prepare(sr, hr, y_channel)
    return float(structural_similarity(hr, sr, data_range=255, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False,
                                       channel_axis=None if y_channel else -1))


def _gaussian_valid(img: np.ndarray, size: int) -> np.ndarray:
    """sewar's filter2(img, fspecial('gaussian', size, size / 5), 'valid') on each channel of
    (H,W,C): the 2-D Gaussian is the outer product of this 1-D one, so two 1-D passes."""
    x = np.arange(size) - size // 2
    g = np.exp(-x ** 2 / (2 * (size / 5) ** 2))
    g /= g.sum()
    r = size // 2
    out = cv2.sepFilter2D(img, cv2.CV_64F, g, g, borderType=cv2.BORDER_CONSTANT)
    return out.reshape(img.shape)[r:-r, r:-r]


def vif(sr: np.ndarray, hr: np.ndarray, sigma_nsq: float = 2.0, eps: float = 1e-10) -> float:
    """Pixel-domain VIF (Sheikh & Bovik): sewar's vifp (4 scales, Gaussian windows of
    17/9/5/3 px, sigma = size/5, noise variance 2) per RGB channel, averaged over the
    channels. Separable filters instead of sewar's 2-D convolutions: the same number within
    1e-4 relative (tests/test_evaluation.py), about 20x faster."""
    ref, dist = np.asarray(hr, np.float64), np.asarray(sr, np.float64)
    num = den = 0.0
    for scale in range(4):
        size = 2 ** (4 - scale) + 1
        if scale:
            ref = _gaussian_valid(ref, size)[::2, ::2]
            dist = _gaussian_valid(dist, size)[::2, ::2]
        mu_r, mu_d = _gaussian_valid(ref, size), _gaussian_valid(dist, size)
        var_r = np.maximum(_gaussian_valid(ref * ref, size) - mu_r * mu_r, 0)
        var_d = np.maximum(_gaussian_valid(dist * dist, size) - mu_d * mu_d, 0)
        cov = _gaussian_valid(ref * dist, size) - mu_r * mu_d
        g = cov / (var_r + eps)
        sv_sq = var_d - g * cov
        flat_r, flat_d = var_r < eps, var_d < eps   # sewar's order of the special cases
        g[flat_r], sv_sq[flat_r], var_r[flat_r] = 0, var_d[flat_r], 0
        g[flat_d], sv_sq[flat_d] = 0, 0
        negative = g < 0
        sv_sq[negative], g[negative] = var_d[negative], 0
        sv_sq = np.maximum(sv_sq, eps)
        num = num + np.log10(1 + g ** 2 * var_r / (sv_sq + sigma_nsq)).sum(axis=(0, 1))
        den = den + np.log10(1 + var_r / sigma_nsq).sum(axis=(0, 1))
    return float(np.mean(num / den))


@functools.lru_cache(maxsize=1)
def face_models() -> SimpleNamespace:
    """The dlib models face_recognition uses for its HOG face_locations and face_encodings.
    Importing face_recognition would also load its 68-point and CNN models (1 s and 100 MB in
    every metric worker) and turn on PIL's global LOAD_TRUNCATED_IMAGES, which would let
    data.read_image accept truncated files."""
    import dlib
    import face_recognition_models
    from photos import faces
    return SimpleNamespace(
        detector=faces.hog_detector(), rectangle=dlib.rectangle,
        pose_5_point=faces.landmark_predictor(5),
        encoder=dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location()))


def face_box(hr: np.ndarray, upsample: int = FACE_UPSAMPLE) -> Box | None:
    """The largest HOG face box on `hr`, clipped to the image (face_recognition.face_locations
    with model="hog", then the largest); None if no face is found."""
    h, w = hr.shape[:2]
    boxes = [(max(r.top(), 0), min(r.right(), w), min(r.bottom(), h), max(r.left(), 0))
             for r in face_models().detector(to_uint8(hr), upsample)]
    return max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3])) if boxes else None


def crop(img: np.ndarray, box: Box) -> np.ndarray:
    top, right, bottom, left = box
    return img[top:bottom, left:right]


def fr_psnr(sr: np.ndarray, hr: np.ndarray, box: Box | None, y_channel: bool = False):
    """PSNR on the HR face box; None without a face."""
    return None if box is None else psnr(crop(sr, box), crop(hr, box), y_channel)


def fr_ssim(sr: np.ndarray, hr: np.ndarray, box: Box | None, y_channel: bool = False):
    """SSIM on the HR face box; None without a face."""
    return None if box is None else ssim(crop(sr, box), crop(hr, box), y_channel)


def face_encoding(img: np.ndarray, box: Box) -> np.ndarray:
    """dlib's 128-d face descriptor of the face at `box`: what face_recognition.face_encodings
    computes (its 5-point landmarks of `img` in the box, one jitter), without its list
    round trips."""
    img = to_uint8(img)
    top, right, bottom, left = box
    models = face_models()
    shape = models.pose_5_point(img, models.rectangle(left, top, right, bottom))
    return np.array(models.encoder.compute_face_descriptor(img, shape, 1))


def algorithm_distance(sr: np.ndarray, hr: np.ndarray | None, box: Box | None,
                       hr_encoding: np.ndarray | None = None):
    """Euclidean distance of the face_recognition encodings of SR and HR, both taken at the HR
    box (the detector may miss a face on a poor SR); None without a face. `hr_encoding`
    (face_encoding(hr, box)) spares recomputing HR's for every method."""
    if box is None:
        return None
    if hr_encoding is None:
        hr_encoding = face_encoding(hr, box)
    return float(np.linalg.norm(face_encoding(sr, box) - hr_encoding))


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise squared L2 distance of two (N,D) arrays of vectors."""
    return np.sum((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2, axis=1)


def tar(distances: Sequence[float | None], threshold: float, detected_only: bool = False) -> float:
    """Eq 12, N_TA / N_ALL: the share of all test images whose SR-HR distance is below
    `threshold`; an image without a distance (None: no face detected) is not accepted.
    detected_only: the share among the images that have a distance instead."""
    found = np.asarray([d for d in distances if d is not None], np.float64)
    n = found.size if detected_only else len(distances)
    if n == 0:
        raise ValueError("TAR of an empty set of images")
    return float(np.sum(found < threshold) / n)


class FaceNet:
    """FaceNet L2-normalised 512-d embeddings of RGB 0..255 faces (N,H,W,3), in a graph and
    session of its own so it never mixes with the generator's."""

    def __init__(self, graph_path: str | None = None, batch: int = 16, config=None):
        from networks.identity import IdentityNet
        from tf1 import tf
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.images = tf.placeholder(tf.float32, [None, None, None, 3], "images")
            self.vectors = IdentityNet(graph_path, "embeddings")(self.images)
        self.sess = tf.Session(graph=self.graph, config=config)
        self.batch = batch

    def __call__(self, images: np.ndarray) -> np.ndarray:
        from networks.identity import embed
        return embed(self.sess, self.vectors, self.images, np.asarray(images, np.float32),
                     self.batch)

    def close(self) -> None:
        self.sess.close()


@functools.lru_cache(maxsize=1)
def brisque_model():
    """The brisque package's scorer, imported here because it imports scipy.signal (1 s)."""
    from brisque import BRISQUE

    class Brisque(BRISQUE):
        """brisque 0.2.0's asymmetric_generalized_gaussian_fit divides by `x.shape` (a tuple),
        so mean, sigma_l and sigma_r come back as 1-element arrays, which NumPy 2 refuses to
        turn into floats in scale_features (TypeError). Return plain floats instead."""

        def asymmetric_generalized_gaussian_fit(self, x):
            return tuple(float(np.squeeze(v))
                         for v in super().asymmetric_generalized_gaussian_fit(x))

    return Brisque(url=False)   # url=False: score arrays, never fetch anything


def brisque(img: np.ndarray) -> float:
    """No-reference BRISQUE score (lower is better). The image goes in as uint8 because the
    package's gray conversion only rescales integer images to the 0..1 range it expects."""
    return float(brisque_model().score(to_uint8(img)))


def generator_complexity(build: Callable[[tf.Tensor], model.GeneratorOutput],
                         lr_size: int = 16) -> dict:
    """Parameters and GMACs of one image (Table 9) of the generator `build` makes from an
    lr_size x lr_size input, in a batch-1 graph of its own."""
    import model
    from tf1 import tf
    with tf.Graph().as_default():
        out = build(tf.placeholder(tf.float32, [1, lr_size, lr_size, 3]))
        return {"params": model.count_params("generator"), "gmacs": model.count_macs(out.rgb) / 1e9}


def fps(run: Callable[[], object], batch: int, min_runs: int = 3,
        min_seconds: float = 2.0) -> float:
    """Images per second of `run` (one batch per call) after one warm-up call."""
    run()
    runs, start = 0, time.perf_counter()
    while runs < min_runs or time.perf_counter() - start < min_seconds:
        run()
        runs += 1
    return batch * runs / (time.perf_counter() - start)
