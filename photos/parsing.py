"""Face parsing ground truth for the prior-guided network (thesis Section 3.1, Eq 3.6), in plain
numpy/OpenCV/dlib: 11 part maps per 128x128 training face, uint8 0..255, from dlib's 68
landmarks or from CelebAMask-HQ mask files, computed once per image and cached.

The classes are the thesis's (Section 4.1: "11 face parsing maps, including jawline, eyebrows,
eyes, nose, mouth and ears"), read as CelebAMask-HQ's face parts: jawline (its `skin`, the face
region the jaw line bounds: CelebAMask-HQ has no jawline mask), left/right brow, left/right eye,
nose, the mouth as upper lip, inner mouth and lower lip, left/right ear. 1 + 2 + 2 + 1 + 3 + 2 =
11, the 11 channels Table 3.3 concatenates. There is no background map: background is where
every map is 0. From landmarks (dlib's indices 0-67; "left" is the subject's left, on the
image's right):

    0 jawline      the face region, the jaw line 0-16 closed over the brows 17-26 lifted by
                   FOREHEAD (no landmark marks the forehead), minus classes 1-8
    1 left_brow    22-26, thickened into a band towards the eye
    2 right_brow   17-21, likewise
    3 left_eye     42-47
    4 right_eye    36-41
    5 nose         convex hull of 27-35
    6 upper_lip    48-54 over the inner line 64-60
    7 inner_mouth  60-67
    8 lower_lip    54-59, 48 under the inner line 60, 67-64
    9 left_ear     all zero: no landmark marks the ears (filled from masks)
   10 right_ear    all zero, likewise

A face the HOG detector misses (upsample 1, as metrics.face_box) gets all-zero maps and is
listed in <cache>/no_face.txt with a warning.

Masks instead of landmarks (`masks_dir`, train.py --parsing_masks): a folder, searched
recursively, of binary PNGs named `<id>_<part>.png` with CelebAMask-HQ's part names (MASK_PARTS:
skin, l_brow, r_brow, l_eye, r_eye, nose, u_lip, mouth, l_lip, l_ear, r_ear; the others, hair,
hat, eye_g, ear_r, neck, neck_l, cloth, are not among the thesis's parts and are ignored).
`<id>` is the training image's file stem, or that stem padded to five digits (CelebAMask-HQ's
`12.jpg` <-> `00012_skin.png`). A mask may have any size: it is resized to its image, then
cropped with the same --dataset preset. An image without any mask file gets all-zero maps,
listed and warned about as a missed face.

Cache: <cache_dir>/<stem>.npz (array `maps`, (128,128,11) uint8) plus source.json, which
records the source, preset and classes so that a cache is never reused for other maps.
"""
from __future__ import annotations

import functools
import json
import os
import sys
import warnings
from collections import defaultdict

import cv2
import numpy as np
from tqdm import tqdm

import data
from photos import faces

CLASSES = ("jawline", "left_brow", "right_brow", "left_eye", "right_eye", "nose", "upper_lip",
           "inner_mouth", "lower_lip", "left_ear", "right_ear")
EMPTY_FROM_LANDMARKS = ("left_ear", "right_ear")
N_PARTS = len(CLASSES)
C = {name: i for i, name in enumerate(CLASSES)}
# channel permutation of a horizontal flip: left and right parts trade places
MIRROR = tuple(C[n.replace("left", "#").replace("right", "left").replace("#", "right")]
               for n in CLASSES)
# colours for figures and TensorBoard: background (no map above half) black, then one per class
PALETTE = np.array([[0, 0, 0], [230, 190, 150], [120, 60, 20], [200, 110, 40], [30, 120, 255],
                    [0, 220, 220], [255, 220, 0], [220, 40, 60], [90, 0, 40], [255, 120, 160],
                    [60, 180, 75], [145, 30, 180]], np.uint8)
FACE_UPSAMPLE = 1      # HOG upsampling, as metrics.FACE_UPSAMPLE (finds 352/354 lfw128/val faces)
FOREHEAD = 0.6         # forehead height / distance from the brows' mean to the nose tip
BROW_THICKNESS = 0.2   # brow band thickness / brow length
SUBPIXEL = 4           # fillPoly's fractional bits
LANDMARK_POLYGONS = {  # parts that are closed landmark polygons
    "left_eye": list(range(42, 48)), "right_eye": list(range(36, 42)),
    "upper_lip": list(range(48, 55)) + [64, 63, 62, 61, 60],
    "inner_mouth": list(range(60, 68)),
    "lower_lip": list(range(54, 60)) + [48, 60, 67, 66, 65, 64],
}
BROWS = {"left_brow": (slice(22, 27), slice(42, 48)), "right_brow": (slice(17, 22), slice(36, 42))}
MASK_PARTS = {"skin": "jawline", "l_brow": "left_brow", "r_brow": "right_brow",
              "l_eye": "left_eye", "r_eye": "right_eye", "nose": "nose", "u_lip": "upper_lip",
              "mouth": "inner_mouth", "l_lip": "lower_lip", "l_ear": "left_ear",
              "r_ear": "right_ear"}


def landmarks(img: np.ndarray) -> np.ndarray | None:
    """The 68 (x, y) points (68,2) of the largest HOG face on RGB uint8 `img`; None if none."""
    found = faces.hog_detector()(img, FACE_UPSAMPLE)
    if not found:
        return None
    shape = faces.landmark_predictor(68)(img, max(found, key=lambda r: r.area()))
    return np.array([(p.x, p.y) for p in shape.parts()], np.float32)


def fill(polygon: np.ndarray, size: int) -> np.ndarray:
    """A (size,size) uint8 map, 255 inside `polygon` (k,2 points, sub-pixel), anti-aliased."""
    canvas = np.zeros((size, size), np.uint8)
    points = np.round(polygon * (1 << SUBPIXEL)).astype(np.int32)
    cv2.fillPoly(canvas, [points], 255, cv2.LINE_AA, shift=SUBPIXEL)
    return canvas


def unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-6)


def brow_band(brow: np.ndarray, eye: np.ndarray) -> np.ndarray:
    """A brow's 5 points (its upper edge) closed by the same points moved towards the eye."""
    down = unit(eye.mean(0) - brow.mean(0))
    thickness = BROW_THICKNESS * np.linalg.norm(brow[-1] - brow[0])
    return np.concatenate([brow, brow[::-1] + thickness * down])


def face_outline(pts: np.ndarray) -> np.ndarray:
    """Jaw line 0-16 closed over the brows 26..17 lifted along the chin-to-bridge axis."""
    up = unit(pts[27] - pts[8])
    lift = FOREHEAD * np.linalg.norm(pts[17:27].mean(0) - pts[33])
    return np.concatenate([pts[:17], pts[26:16:-1] + lift * up])


def landmark_maps(pts: np.ndarray, size: int = data.HR_SIZE) -> np.ndarray:
    """(size,size,11) uint8 part maps from dlib's 68 points (see the module docstring)."""
    maps = np.zeros((size, size, N_PARTS), np.uint8)
    for name, idx in LANDMARK_POLYGONS.items():
        maps[..., C[name]] = fill(pts[idx], size)
    for name, (brow, eye) in BROWS.items():
        maps[..., C[name]] = fill(brow_band(pts[brow], pts[eye]), size)
    maps[..., C["nose"]] = fill(cv2.convexHull(pts[27:36])[:, 0], size)
    parts = maps[..., C["left_brow"]:C["left_ear"]].max(axis=2)
    maps[..., C["jawline"]] = cv2.subtract(fill(face_outline(pts), size), parts)
    return maps


def with_background(maps, scale: float, concat=np.concatenate):
    """The maps behind a constant channel at half their `scale`: its argmax is 0 (background)
    where no part reaches half, else 1 + the part's class. `concat` is np's or tf's."""
    return concat([0 * maps[..., :1] + 0.5 * scale, maps], -1)


def colorize(maps: np.ndarray) -> np.ndarray:
    """RGB uint8 picture of part maps (uint8 0..255 or float 0..1): each pixel in the colour of
    its strongest class, black where none reaches half."""
    scale = 255.0 if maps.dtype == np.uint8 else 1.0
    return PALETTE[np.argmax(with_background(maps.astype(np.float32), scale), axis=-1)]


def index_masks(masks_dir: str) -> dict[str, dict[str, str]]:
    """{id: {our class: mask path}} of the `<id>_<part>.png` files under `masks_dir`."""
    if not os.path.isdir(masks_dir):
        raise data.DataError(f"mask folder not found: {masks_dir!r} (--parsing_masks)")
    index: dict[str, dict[str, str]] = defaultdict(dict)
    for root, _, files in os.walk(masks_dir):
        for f in files:
            stem, ext = os.path.splitext(f)
            image_id, _, part = stem.partition("_")
            if ext.lower() == ".png" and part in MASK_PARTS:
                index[image_id][MASK_PARTS[part]] = os.path.join(root, f)
    return index


def mask_maps(files: dict[str, str], image_shape: tuple, preset: str) -> np.ndarray:
    """(128,128,11) uint8 maps from one image's mask files, cropped like the image."""
    maps = np.zeros((data.HR_SIZE, data.HR_SIZE, N_PARTS), np.uint8)
    for name, path in files.items():
        mask = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise data.DataError(f"cannot read mask {path!r}; remove or replace the file")
        mask = cv2.resize(np.where(mask > 127, 255, 0).astype(np.uint8), image_shape[1::-1],
                          interpolation=cv2.INTER_NEAREST)
        maps[..., C[name]] = data.preset_crop(mask, preset)
    # CelebAMask-HQ's skin runs under the other parts; the landmark maps exclude them likewise
    maps[..., C["jawline"]] = cv2.subtract(maps[..., C["jawline"]], maps[..., 1:].max(axis=2))
    return maps


class PartMaps:
    """Part maps of training images, cached as <cache_dir>/<stem>.npz: `prepare(paths)`
    computes the missing ones, calling the object reads one. `mirror` is the channel
    permutation data.BatchLoader applies with a horizontal flip."""

    mirror = MIRROR

    def __init__(self, cache_dir: str, preset: str = "aligned", masks_dir: str | None = None):
        self.cache_dir, self.preset = cache_dir, preset
        self.masks = index_masks(masks_dir) if masks_dir else None
        self.source = {"source": os.path.abspath(masks_dir) if masks_dir else "dlib landmarks",
                       "preset": preset, "classes": list(CLASSES)}
        os.makedirs(cache_dir, exist_ok=True)
        self._check_source()

    def _check_source(self) -> None:
        path = os.path.join(self.cache_dir, "source.json")
        if not os.path.exists(path):
            with open(path, "w") as f:
                json.dump(self.source, f)
            return
        with open(path) as f:
            cached = json.load(f)
        if cached != self.source:
            raise data.DataError(f"parsing cache {self.cache_dir!r} holds maps of {cached}, not "
                                 f"{self.source}: choose another --parsing_cache")

    def cache_path(self, path: str) -> str:
        return os.path.join(self.cache_dir, os.path.splitext(os.path.basename(path))[0] + ".npz")

    def compute(self, path: str) -> np.ndarray | None:
        """Maps of one training image; None when it has no face (or no mask file)."""
        img = data.read_image(path)
        if self.masks is None:
            hr = data.preset_crop(img, self.preset)
            pts = landmarks(hr)
            return None if pts is None else landmark_maps(pts)
        stem = os.path.splitext(os.path.basename(path))[0]
        files = self.masks.get(stem) or self.masks.get(stem.zfill(5))
        return mask_maps(files, img.shape, self.preset) if files else None

    def prepare(self, paths: list[str]) -> PartMaps:
        """Compute and cache the maps of the images not cached yet; warn about missed faces."""
        todo = [p for p in paths if not os.path.exists(self.cache_path(p))]
        missed = []
        for path in tqdm(todo, desc="parsing maps", unit="img", disable=not todo):
            try:
                maps = self.compute(path)
            except data.DataError as err:   # the loader skips it too
                warnings.warn(f"skipping {err}")
                continue
            if maps is None:
                missed.append(os.path.basename(path))
                maps = np.zeros((data.HR_SIZE, data.HR_SIZE, N_PARTS), np.uint8)
            tmp = self.cache_path(path) + ".tmp.npz"   # no half-written cache file on a kill
            np.savez_compressed(tmp, maps=maps)
            os.replace(tmp, self.cache_path(path))
        listing = os.path.join(self.cache_dir, "no_face.txt")
        if missed:
            with open(listing, "a") as f:
                f.write("".join(name + "\n" for name in missed))
        if os.path.exists(listing):
            with open(listing) as f:
                count = len(set(f.read().split()) & {os.path.basename(p) for p in paths})
            if count:
                warnings.warn(f"{count} of {len(paths)} training images have no detected face "
                              f"(or no mask): their part maps are all zero; listed in {listing}")
        return self

    def __call__(self, path: str) -> np.ndarray:
        with np.load(self.cache_path(path)) as f:
            return f["maps"]


def figure(img: np.ndarray, maps: np.ndarray, path: str) -> None:
    """Face | part maps over it | each class alone, saved to `path`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    overlay = (0.5 * img + 0.5 * colorize(maps)).astype(np.uint8)
    panels = [("face", img), ("parts", overlay)] + [(n, maps[..., C[n]]) for n in CLASSES]
    fig = Figure(figsize=(1.6 * 7, 1.9 * 2))   # 2 + 11 panels
    FigureCanvasAgg(fig)
    for k, (title, panel) in enumerate(panels):
        ax = fig.add_subplot(2, 7, k + 1)
        ax.imshow(panel, cmap="gray", vmin=0, vmax=255)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.savefig(path, dpi=100, bbox_inches="tight")


def main(argv: list[str] | None = None) -> None:
    """Draw the landmark part maps of one face, to check them."""
    import argparse
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("face", help="a face image")
    parser.add_argument("out", help="the figure (.png)")
    parser.add_argument("--dataset", default="aligned", choices=data.PRESETS, help="crop preset")
    args = parser.parse_args(argv)
    img = data.preset_crop(data.read_image(args.face), args.dataset)
    pts = landmarks(img)
    if pts is None:
        sys.exit(f"no face found in {args.face!r}")
    figure(img, landmark_maps(pts), args.out)


if __name__ == "__main__":
    main()
