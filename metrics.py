"""Image-quality and identity metrics of the paper's Section 4.3 (Tables 6-9).

Every image argument is an RGB (H,W,3) array, uint8 or float, on the 0..255 scale; `hr` is the
reference. Face-based metrics take the face box found on the HR image (`face_box`) so that SR
and HR are measured on the same pixels.
"""
from __future__ import annotations

import functools
import time
from typing import Callable, Sequence

import face_recognition
import numpy as np
from brisque import BRISQUE
from PIL import ImageFile
from sewar.full_ref import vifp
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import model
from identity import IdentityNet, embed
from tf1 import tf

# face_recognition turns on PIL's global LOAD_TRUNCATED_IMAGES at import, which would make
# data.read_image accept truncated files in every process that imports this module.
ImageFile.LOAD_TRUNCATED_IMAGES = False

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


def vif(sr: np.ndarray, hr: np.ndarray) -> float:
    """Pixel-domain VIF (Sheikh & Bovik), averaged over the RGB channels."""
    return float(vifp(np.asarray(hr, np.float64), np.asarray(sr, np.float64)))


def face_box(hr: np.ndarray, upsample: int = FACE_UPSAMPLE) -> Box | None:
    """The largest HOG face box on `hr`, clipped to the image; None if no face is found."""
    boxes = face_recognition.face_locations(to_uint8(hr), number_of_times_to_upsample=upsample,
                                            model="hog")
    if not boxes:
        return None
    h, w = hr.shape[:2]
    top, right, bottom, left = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
    return max(top, 0), min(right, w), min(bottom, h), max(left, 0)


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
    """dlib's 128-d face descriptor of the face at `box`."""
    return face_recognition.face_encodings(to_uint8(img), known_face_locations=[box])[0]


def algorithm_distance(sr: np.ndarray, hr: np.ndarray, box: Box | None):
    """Euclidean distance of the face_recognition encodings of SR and HR, both taken at the HR
    box (the detector may miss a face on a poor SR); None without a face."""
    if box is None:
        return None
    return float(np.linalg.norm(face_encoding(sr, box) - face_encoding(hr, box)))


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
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.images = tf.placeholder(tf.float32, [None, None, None, 3], "images")
            self.vectors = IdentityNet(graph_path, "embeddings")(self.images)
        self.sess = tf.Session(graph=self.graph, config=config)
        self.batch = batch

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return embed(self.sess, self.vectors, self.images, np.asarray(images, np.float32),
                     self.batch)

    def close(self) -> None:
        self.sess.close()


class _Brisque(BRISQUE):
    """brisque 0.2.0's asymmetric_generalized_gaussian_fit divides by `x.shape` (a tuple), so
    mean, sigma_l and sigma_r come back as 1-element arrays, which NumPy 2 refuses to turn
    into floats in scale_features (TypeError). Return plain floats instead."""

    def asymmetric_generalized_gaussian_fit(self, x):
        return tuple(float(np.squeeze(v)) for v in super().asymmetric_generalized_gaussian_fit(x))


@functools.lru_cache(maxsize=1)
def _brisque_model() -> _Brisque:
    return _Brisque(url=False)   # url=False: score arrays, never fetch anything


def brisque(img: np.ndarray) -> float:
    """No-reference BRISQUE score (lower is better). The image goes in as uint8 because the
    package's gray conversion only rescales integer images to the 0..1 range it expects."""
    return float(_brisque_model().score(to_uint8(img)))


def generator_complexity(build: Callable[[tf.Tensor], model.GeneratorOutput]) -> dict:
    """Parameters and GMACs of one 16->128 image (Table 9) of the generator `build` makes from
    a 16x16 input, in a batch-1 graph of its own."""
    with tf.Graph().as_default():
        out = build(tf.placeholder(tf.float32, [1, 16, 16, 3]))
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
