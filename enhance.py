"""Whole-photo face super-resolution: upscale a photograph (bicubic), find its faces, align each
to the training crop template, super-resolve it from 16x16 and paste it back with a feathered
mask. Nothing outside the face masks differs from the plain upscale.

    python enhance.py --input PHOTO_OR_DIR --result_dir OUT [--upscale 4] [--weight_path W]

Writes to --result_dir, per photo <stem>: <stem>_enhanced.png, <stem>_upscaled.png (the plain
bicubic upscale), <stem>_face<k>_lr.png and _sr.png (the aligned 16x16 input and 128x128 output
of each enhanced face), <stem>_compare.png (before/after with crops) and <stem>_faces.json.
Which faces are enhanced is measured per face (--min_kept_db); --all_faces forces every one.
"""
from __future__ import annotations

import json
import os
import sys

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from tqdm import tqdm

import checkpoints
import data
from evaluation import metrics
from options.enhance_options import EnhanceOptions
from photos import faces
from test import Generator


def plain_upscale(rgb: np.ndarray, upscale: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (w * upscale, h * upscale), interpolation=cv2.INTER_CUBIC)


def model_input(rgb: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """The face's 16x16 model input (faces.aligned_crop at 16 px) and how much of the face it
    keeps: the PSNR (dB) between the aligned face at its native resolution and the input
    brought back to that size (bicubic). A face whose crop is 16 px or smaller loses nothing
    (inf). One warp serves both."""
    native = int(round(faces.native_size(landmarks)))
    if native <= data.LR_SIZE:
        return faces.aligned_crop(rgb, landmarks, data.LR_SIZE), float("inf")
    crop = faces.aligned_crop(rgb, landmarks, native)
    lr = cv2.resize(crop, (data.LR_SIZE, data.LR_SIZE), interpolation=cv2.INTER_AREA)
    return lr, float(metrics.psnr(crop, cv2.resize(lr, (native, native),
                                                   interpolation=cv2.INTER_CUBIC)))


def decide(kept_db: float, opt) -> tuple[bool, str]:
    if kept_db == float("inf"):
        return True, "the face's crop is 16 px or less: the 16x16 input holds all of it"
    if kept_db >= opt.min_kept_db:
        return True, f"the 16x16 input keeps the face ({kept_db:.1f} dB >= {opt.min_kept_db} dB)"
    if opt.all_faces:
        return True, f"--all_faces (the 16x16 input keeps only {kept_db:.1f} dB)"
    return False, (f"the 16x16 input would lose detail ({kept_db:.1f} dB < {opt.min_kept_db} "
                   f"dB): plain upscale kept; --all_faces forces it")


def rounded(a) -> list:
    return np.round(np.asarray(a, np.float64), 2).tolist()


def enhance_photo(rgb: np.ndarray, opt, detector: faces.Detector, gen: Generator
                  ) -> tuple[np.ndarray, np.ndarray, list[dict], list[tuple]]:
    """(enhanced photo, plain upscale, one record per face, (lr, sr) of each enhanced face).
    Faces are searched in the plain upscale, where small faces are large enough for MTCNN."""
    u = opt.upscale
    base = plain_upscale(rgb, u)
    found = detector(base)
    records, crops, inputs = [], [], []
    for face in found:
        landmarks = faces.scaled(face.landmarks, 1 / u)   # in pixels of the input photo
        lr, kept = model_input(rgb, landmarks)
        inputs.append(lr)
        enhanced, why = decide(kept, opt)
        records.append({"box": rounded(faces.scaled(np.reshape(face.box, (2, 2)), 1 / u).ravel()),
                        "score": round(face.score, 4),
                        "landmarks": dict(zip(faces.POINTS, rounded(landmarks))),
                        "native_crop_size": round(faces.native_size(landmarks), 1),
                        "detail_kept_db": None if np.isinf(kept) else round(kept, 2),
                        "enhanced": enhanced, "reason": why})
    chosen = [k for k, r in enumerate(records) if r["enhanced"]]
    out = base
    if chosen:
        lr = np.stack([inputs[k] for k in chosen])
        sr = metrics.to_uint8(gen(lr)[0])
        for k, low, high in zip(chosen, lr, sr):
            out, box = faces.paste(out, high, found[k].landmarks)
            records[k]["paste_box"] = box   # in pixels of the output
            crops.append((low, high))
    return out, base, records, crops


def before_after(base: np.ndarray, out: np.ndarray, records: list[dict], crops: list[tuple],
                 path: str, title: str) -> None:
    """Plain upscale | enhanced, and under them each enhanced face: LR input, the plain upscale
    of its region, the enhanced region."""
    pasted = [r["paste_box"] for r in records if r["enhanced"]]
    rows = 1 + len(pasted)
    fig = Figure(figsize=(9, 4 + 2.2 * len(pasted)))
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(rows, 6, height_ratios=[4] + [2.2] * len(pasted))
    for col, (name, img) in enumerate((("bicubic upscale", base), ("enhanced", out))):
        ax = fig.add_subplot(grid[0, 3 * col:3 * col + 3])
        ax.imshow(img)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    for row, ((low, _), (x0, y0, x1, y1)) in enumerate(zip(crops, pasted), start=1):
        panels = (("LR 16x16", low), ("bicubic", base[y0:y1, x0:x1]),
                  ("enhanced", out[y0:y1, x0:x1]))
        for col, (name, img) in enumerate(panels):
            ax = fig.add_subplot(grid[row, 2 * col:2 * col + 2])
            ax.imshow(img, interpolation="nearest")
            ax.set_title(f"face {row - 1}: {name}", fontsize=8)
            ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=100, bbox_inches="tight")


def write_outputs(stem: str, out_dir: str, base, out, records, crops, figure: bool) -> None:
    Image.fromarray(out).save(os.path.join(out_dir, f"{stem}_enhanced.png"))
    Image.fromarray(base).save(os.path.join(out_dir, f"{stem}_upscaled.png"))
    enhanced = [k for k, r in enumerate(records) if r["enhanced"]]
    for k, (low, high) in zip(enhanced, crops):
        Image.fromarray(low).save(os.path.join(out_dir, f"{stem}_face{k}_lr.png"))
        Image.fromarray(high).save(os.path.join(out_dir, f"{stem}_face{k}_sr.png"))
    with open(os.path.join(out_dir, f"{stem}_faces.json"), "w") as f:
        json.dump({"size": list(base.shape[1::-1]), "faces": records}, f, indent=1)
    if figure and records:
        before_after(base, out, records, crops, os.path.join(out_dir, f"{stem}_compare.png"), stem)


def photos(path: str) -> list[str]:
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no photo or folder at {path!r}: pass --input a photo or a "
                                f"folder of photos")
    return data.list_images(path)


def main(argv: list[str] | None = None) -> list[str]:
    """Enhances every readable photo; returns the paths of the photos that could not be read."""
    opt = EnhanceOptions().parse(argv, verbose=False)
    try:
        if opt.upscale < 1:
            raise ValueError(f"--upscale {opt.upscale}: pass a whole factor of 1 or more")
        paths = photos(opt.input)
        prefix = checkpoints.intact(checkpoints.resolve(opt.weight_path))
        os.makedirs(opt.result_dir, exist_ok=True)
        gen = Generator(opt, prefix)
    except (FileNotFoundError, data.DataError, ValueError, OSError) as err:
        sys.exit(f"error: {err}")
    detector = faces.Detector()
    stems = {p: os.path.splitext(os.path.basename(p))[0] for p in paths}
    unreadable = []
    for path, rgb in faces.readable(paths, unreadable):
        out, base, records, crops = enhance_photo(rgb, opt, detector, gen)
        if not records:
            tqdm.write(f"{path}: no face found; written upscaled {opt.upscale}x, unchanged")
        write_outputs(stems[path], opt.result_dir, base, out, records, crops, not opt.no_figures)
    gen.close()
    print(f"results in {opt.result_dir}")
    return unreadable


if __name__ == "__main__":
    main()
