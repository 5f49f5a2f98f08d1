"""Where a face's gain over bicubic goes in enhance.py (docs/photos.md): each face that MTCNN
finds in the shared photos downscaled by --factor (area) is scored inside enhance.py's paste
mask, at the face's native size in the original photo, four ways against the original:
the photo's own bicubic upscale, the bicubic of the model's aligned input, the model's SR,
and the SR pasted into the upscale as enhance.py pastes it.

    python tools/mask_gain.py [--weight_path W] [--weight_path_4x W4 | none] [--factor 4]
"""
from __future__ import annotations

import glob
import os
from pathlib import Path
import sys

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # `python tools/mask_gain.py` runs too

import data
import enhance
from evaluation import metrics
from photos import faces
from tools import quality


def masked_psnr(img: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB) of `img` against `truth` weighted by `mask` (0..1, HxW)."""
    err = (img.astype(np.float64) - truth.astype(np.float64)) ** 2 * mask[..., None]
    return float(10 * np.log10(255.0 ** 2 / (err.sum() / (3 * mask.sum()))))


def placed(base: np.ndarray, block: np.ndarray, corner: tuple[int, int]) -> np.ndarray:
    """A copy of `base` with `block` in place at `corner` (x, y), unblended (clipped)."""
    out = base.copy()
    overlap = faces.block_overlap(corner, len(block), base.shape)
    if overlap is not None:
        at, part, _ = overlap
        out[at] = block[part]
    return out


def face_row(original: np.ndarray, low: np.ndarray, base: np.ndarray, landmarks: np.ndarray,
             factor: int, model: enhance.Model, opt) -> dict:
    """The four in-mask PSNRs of one face, `landmarks` in pixels of the downscaled `low`."""
    lr, kept, corner = enhance.model_input(low, landmarks, model, opt)
    out_marks = faces.scaled(landmarks, factor)
    native = int(round(faces.native_size(out_marks)))
    truth, mask = faces.aligned_crop(original, out_marks, native), faces.face_mask(native)
    pasted = base.copy()
    if corner is None:
        sr = metrics.to_uint8(model.gen(lr[None].astype(np.float32))[0][0])
        faces.paste(pasted, sr, out_marks)
        resized = lambda img, how: cv2.resize(np.float32(img), (native, native), interpolation=how)
        seen = {"input bicubic": resized(lr, cv2.INTER_CUBIC), "SR": resized(sr, cv2.INTER_AREA)}
    else:   # the native route: the input and its SR unwarped, in place in the upscale
        sr, at = enhance.native_sr(model.gen, lr, factor), enhance.scaled_corner(corner, factor)
        faces.paste_block(pasted, sr, at)
        seen = {name: faces.aligned_crop(placed(base, block, at), out_marks, native)
                for name, block in (("input bicubic", enhance.plain_upscale(lr, factor)),
                                    ("SR", sr))}
    return {"crop": faces.native_size(landmarks), "model": model.gen.lr_size,
            "route": "aligned" if corner is None else "native",
            "whole": np.isinf(kept),   # the input holds all of the face
            "photo bicubic": masked_psnr(faces.aligned_crop(base, out_marks, native), truth, mask),
            **{name: masked_psnr(img, truth, mask) for name, img in seen.items()},
            "pasted": masked_psnr(faces.aligned_crop(pasted, out_marks, native), truth, mask)}


def photo_rows(path: str, factor: int, opt, detector: faces.Detector,
               models: list[enhance.Model]) -> list[dict]:
    """face_row of each face found in the photo at `path` downscaled by `factor`, false boxes
    left out as enhance.py leaves them, each through the model enhance.py chooses for it."""
    original, low, base = quality.downscaled(data.read_image(path), factor)
    found, scale = enhance.detect(low, base, factor, detector)
    rows = []
    for face in found:
        mine = faces.in_photo(face, scale)
        if enhance.not_a_face(mine, low, opt) is None:
            model = enhance.choose(faces.native_size(mine.landmarks), models)
            rows.append({"photo": os.path.basename(path),
                         **face_row(original, low, base, mine.landmarks, factor, model, opt)})
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    args = quality.photo_parser(__doc__.splitlines()[0]).parse_args(argv)
    opt, models, detector = quality.load_enhance(args)
    try:
        rows = [row for path in sorted(glob.glob(os.path.join(args.photos, "*.jpg")))
                for row in photo_rows(path, args.factor, opt, detector, models)]
    finally:
        enhance.close(models)
    names = ["photo bicubic", "input bicubic", "SR", "pasted"]
    print("| photo | crop px (LR) | model input px | route | " + " | ".join(names) + " |")
    print("|" + "---|" * (4 + len(names)))
    for r in rows:
        print(f"| {r['photo']} | {r['crop']:.1f} | {r['model']} | {r['route']} | "
              + " | ".join(f"{r[n]:.2f}" for n in names) + " |")
    whole = [r for r in rows if r["whole"]]
    for label, group in ((f"all {len(rows)} faces", rows),
                         (f"the {len(whole)} faces whose input holds all of them", whole)):
        for n in names[1:]:
            d = np.array([r[n] - r["photo bicubic"] for r in group])
            if len(d):
                print(f"{label}: {n} - photo bicubic, dB: mean {d.mean():+.2f}, "
                      f"min {d.min():+.2f}, max {d.max():+.2f}")
    return rows


if __name__ == "__main__":
    main()
