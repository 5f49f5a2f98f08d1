"""Measure how real small faces look at the model's input size, and how each training
degradation makes lfw128 faces look, to set data.PHOTO's ranges (docs/photos.md, "A photo
degradation for training").

    python tools/degradation_check.py [--photos ../shared/data/photos] [--size 16]

Real: every annotated face of the shared photos that faces.Detector finds (in the native
photo), aligned at --size px by faces.aligned_crop, as enhance.py cuts its input, from four
versions of each photo: native, re-saved as JPEG quality 75, downscaled 4x (area), and
downscaled 4x then JPEG 75. Synthetic: the faces of --faces (lfw128/val) degraded to --size
by a plain area downscale and by each of data.DEGRADATIONS.

No-reference statistics of each face, on its luma (YCrCb) unless said:
- detail: var(Laplacian) / var(luma), the share of high frequencies (blur lowers it);
- noise: skimage's wavelet estimate of the noise sigma, in 0..255 levels;
- chroma: var(Laplacian) of Cr and Cb over that of luma (JPEG's 4:2:0 chroma lowers it).
Prints a markdown table of each statistic's 10th, 50th and 90th percentile.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
import sys
from typing import Callable

import cv2
import numpy as np
from skimage.restoration import estimate_sigma

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # `python tools/degradation_check.py` runs too

import data
from photos import faces
from tools import detectors

FACTOR = 4      # the photos' downscale: the issue's real-photo check
QUALITY = 75    # the JPEG re-save of that check
STATS = ("detail", "noise", "chroma")


def laplacian_energy(channel: np.ndarray) -> float:
    return float(cv2.Laplacian(channel, cv2.CV_64F).var())


def statistics(rgb: np.ndarray) -> dict[str, float]:
    """STATS of one RGB uint8 face."""
    y, cr, cb = cv2.split(cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb).astype(np.float64))
    return {"detail": laplacian_energy(y) / y.var(), "noise": float(estimate_sigma(y)),
            "chroma": (laplacian_energy(cr) + laplacian_energy(cb)) / laplacian_energy(y)}


def area(rgb: np.ndarray, factor: int = FACTOR) -> np.ndarray:
    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (w // factor, h // factor), interpolation=cv2.INTER_AREA)


# photo version -> (the photo, the factor its landmarks are scaled by)
VERSIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], float]] = {
    "real, native": (lambda x: x, 1.0),
    f"real, native, JPEG {QUALITY}": (lambda x: data.jpeg(x, QUALITY), 1.0),
    f"real, {FACTOR}x area": (area, 1 / FACTOR),
    f"real, {FACTOR}x area, JPEG {QUALITY}": (lambda x: data.jpeg(area(x), QUALITY), 1 / FACTOR),
}


def annotated(found: list[faces.Face], boxes: list) -> list[faces.Face]:
    """The detected faces that overlap an annotation (IoU >= 0.3)."""
    return [f for f in found if any(detectors.iou(f.box, b) >= detectors.IOU_MIN for b in boxes)]


def real_faces(photos: str, size: int) -> dict[str, list[np.ndarray]]:
    """VERSIONS -> the aligned size px crops of the annotated faces found in the photos."""
    truth = detectors.read_truth(os.path.join(photos, "faces.csv"))
    detector = faces.Detector()
    crops: dict[str, list[np.ndarray]] = {v: [] for v in VERSIONS}
    for name, boxes in sorted(truth.items()):
        rgb = data.read_image(os.path.join(photos, name))
        found = annotated(detector(rgb), boxes)
        for version, (make, factor) in VERSIONS.items():
            img = make(rgb)
            crops[version] += [faces.aligned_crop(img, faces.scaled(f.landmarks, factor), size)
                               for f in found]
    return crops


def synthetic(size: int) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Each degradation of an HR face to size px (the photo one seeded by the face)."""
    steps = (data.HR_SIZE // size).bit_length() - 1   # 2x bilinear steps of the chain
    return {"area": lambda hr: data.area_downscale(hr, size),
            "bilinear_chain": lambda hr: data.degrade(hr)[steps],
            "bicubic": lambda hr: data.bicubic_downscale(hr, size),
            "photo": lambda hr: data.photo_downscale(hr, data.image_rng(hr), size)}


def percentiles(crops: list[np.ndarray]) -> list[str]:
    """'p10 / p50 / p90' of each of STATS over the crops."""
    values = [statistics(c) for c in crops]
    return [" / ".join(f"{v:.2f}" for v in np.percentile([s[k] for s in values], (10, 50, 90)))
            for k in STATS]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default="../shared/data/photos")
    parser.add_argument("--faces", default="../shared/data/lfw128/val")
    parser.add_argument("--size", type=int, default=data.LR_SIZE, help="LR size, px")
    opt = parser.parse_args(argv)
    rows = real_faces(opt.photos, opt.size)
    hr = [data.read_image(p) for p in data.list_images(opt.faces)]
    rows.update({f"{os.path.basename(os.path.normpath(opt.faces))}, {name}": [make(f) for f in hr]
                 for name, make in synthetic(opt.size).items()})
    print(f"faces at {opt.size} px; data: {opt.photos} (annotated faces), {opt.faces}; "
          f"photo ranges: {data.PHOTO}")
    header = ["faces", "n", *(f"{k} p10 / p50 / p90" for k in STATS)]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for name, crops in rows.items():
        print(f"| {name} | {len(crops)} | " + " | ".join(percentiles(crops)) + " |")


if __name__ == "__main__":
    main()
