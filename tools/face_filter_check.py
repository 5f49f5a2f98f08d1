"""Measure what tells enhance.py's real faces from its false boxes (docs/photos.md, "Telling faces
from false boxes"): every box MTCNN finds on the annotated photos, searched as enhance.py
searches them (the photo's bicubic upscale, at the default --upscale 4 unless told), with its
MTCNN score, how well its landmarks fit the face template, its size, and dlib's face score
around it (faces.dlib_score: its CNN and HOG detectors' best).

    python tools/face_filter_check.py --photos ../shared/data/photos [--upscale 4]

Each photo is measured four ways: as it is, re-saved as JPEG quality 75, 4x area-downscaled, and
4x area-downscaled then re-saved as JPEG 75. A box is a true face when it overlaps an
annotation of faces.csv with IoU >= 0.3, and false otherwise (every box on a photo without
annotations, such as dogs.jpg). Prints the distributions of both groups, every false box, and
the rule of enhance.py that rejects it.
"""
from __future__ import annotations

import argparse
import io
import os
from pathlib import Path
import sys
from typing import Callable, NamedTuple

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # `python tools/face_filter_check.py` runs too

import data
import enhance
from options.enhance_options import EnhanceOptions
from photos import faces
from tools import detectors

DOWNSCALE = 4   # the degraded photos: 4x area, as tools/quality.py and tools/detectors.py
JPEG_QUALITY = 75


class Box(NamedTuple):
    condition: str
    photo: str
    face: faces.Face   # in pixels of the photo enhance.py was given
    true: bool
    rgb: np.ndarray    # that photo
    dlib: float        # faces.dlib_score of the box there, computed once (0.1 s)

    @property
    def fit(self) -> float:
        return faces.template_fit(self.face.landmarks)

    @property
    def size(self) -> float:
        return enhance.face_size(self.face)


def jpeg(rgb: np.ndarray) -> np.ndarray:
    """`rgb` saved as a JPEG of quality 75 (Pillow's defaults otherwise) and read back."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=JPEG_QUALITY)
    return np.asarray(Image.open(buf).convert("RGB"))


def area_down(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (w // DOWNSCALE, h // DOWNSCALE), interpolation=cv2.INTER_AREA)


CONDITIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "native": lambda rgb: rgb,
    "native, JPEG 75": jpeg,
    "4x area down": area_down,
    "4x area down, JPEG 75": lambda rgb: jpeg(area_down(rgb)),
}


def boxes_of(rgb: np.ndarray, detector: faces.Detector, upscale: int) -> list[faces.Face]:
    """The faces enhance.py --upscale `upscale` finds in the photo `rgb`, in its pixels."""
    canvas = enhance.plain_upscale(rgb, upscale)
    found, scale = enhance.detect(rgb, canvas, upscale, detector)
    return [faces.in_photo(f, scale) for f in found]


def is_annotated(face: faces.Face, truth: list, factor: float) -> bool:
    """Whether `face` (pixels of a photo `factor` times the native one) overlaps an annotation."""
    box = np.divide(face.box, factor)
    return any(detectors.iou(box, t) >= detectors.IOU_MIN for t in truth)


def measure(photos: str, detector: faces.Detector, upscale: int = 4) -> list[Box]:
    """Every box enhance.py --upscale `upscale` finds on every photo of `photos` under every
    condition, labelled."""
    truth = detectors.read_truth(os.path.join(photos, "faces.csv"))
    found = []
    for path in data.list_images(photos):
        name, native = os.path.basename(path), data.read_image(path)
        for condition, prepare in CONDITIONS.items():
            rgb = prepare(native)
            factor = rgb.shape[1] / native.shape[1]
            found += [Box(condition, name, f, is_annotated(f, truth.get(name, []), factor), rgb,
                          faces.dlib_score(rgb, f.box))
                      for f in boxes_of(rgb, detector, upscale)]
    return found


MEASURES = {"MTCNN score": lambda b: b.face.score, "template fit, px RMS": lambda b: b.fit,
            "face px": lambda b: b.size, "dlib score": lambda b: b.dlib}


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    low, mid, high = np.percentile(values, [0, 50, 100])
    return f"{low:.3g} / {mid:.3g} / {high:.3g}"


def distributions(boxes: list[Box]) -> str:
    """A markdown table: per condition and group, the boxes and min / median / max of each
    measure; then the same over all conditions."""
    head = ["condition", "boxes", *(f"{m} (min / median / max)" for m in MEASURES)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for condition in [*CONDITIONS, "all four"]:
        for true, group in ((True, "true faces"), (False, "false boxes")):
            chosen = [b for b in boxes if b.true == true and condition in (b.condition, "all four")]
            cells = [spread([m(b) for b in chosen]) for m in MEASURES.values()]
            lines.append(f"| {condition} | {len(chosen)} {group} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def false_boxes(boxes: list[Box], opt) -> str:
    """One line per false box: where, its measures, and the rule of enhance.py that rejects it."""
    lines = []
    for b in boxes:
        if not b.true:
            box = ", ".join(f"{v:.0f}" for v in b.face.box)
            lines.append(f"- {b.photo}, {b.condition}, box ({box}): score {b.face.score:.3f}, "
                         f"fit {b.fit:.2f} px, {b.size:.1f} px, dlib {b.dlib:.2f}: "
                         f"{enhance.not_a_face(b.face, b.rgb, opt) or 'NOT REJECTED'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[Box]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default="../shared/data/photos")
    parser.add_argument("--upscale", type=int, default=4, help="enhance.py's --upscale")
    args = parser.parse_args(argv)
    opt = EnhanceOptions().parse(["--input", args.photos], verbose=False)
    boxes = measure(args.photos, faces.Detector(), args.upscale)
    print(distributions(boxes))
    print(f"\nfalse boxes, and what enhance.py says of them (--min_score {opt.min_score}, "
          f"--max_template_fit {opt.max_template_fit}, --min_face_px {opt.min_face_px}, "
          f"--min_dlib_score {opt.min_dlib_score}):")
    print(false_boxes(boxes, opt))
    lost = [b for b in boxes if b.true and enhance.not_a_face(b.face, b.rgb, opt)]
    print(f"\ntrue faces rejected: {len(lost)} of {sum(b.true for b in boxes)}")
    return boxes


if __name__ == "__main__":
    main()
