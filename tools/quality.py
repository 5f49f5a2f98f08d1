"""Real-photo quality check of enhance.py (docs/photos.md): downscale each annotated
photo by --factor (area), optionally save it as JPEG, enhance it back by the same factor, and
score every annotated face box against the original photo, beside a plain bicubic upscale.

    python tools/quality.py --photos ../shared/data/photos [--factor 4] [--jpeg 0,75] [--all_faces]

Measures per face: PSNR and SSIM (RGB, metrics.py) over the box; dlib's identity distance
(face_recognition's 128-d encoding of the box in each image against the original's; lower is
better, < 0.6 is the same person by its usual rule); and the PSNR of a perfect model through
enhance.py's alignment and paste (the original's own aligned crop pasted in place of each
enhanced face's SR: the bound the pipeline leaves to any model). Prints, per degradation, one
markdown row per face (with the model enhance.py chose for it), the means, and the
distribution of the per-face PSNR gain over bicubic.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
import sys

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # `python tools/quality.py` runs too

import data
import enhance
from evaluation import metrics
from options.arg_types import int_list
from photos import faces
from tools import detectors


def scores(img: np.ndarray, original: np.ndarray, box, original_code: np.ndarray) -> dict:
    """PSNR, SSIM and dlib identity distance of `box` (left, top, right, bottom) in `img`
    against the original; `original_code` is metrics.face_encoding of the original's box."""
    a, b = region(img, box), region(original, box)
    return {"psnr": metrics.psnr(a, b), "ssim": metrics.ssim(a, b),
            "id": metrics.algorithm_distance(img, original, dlib_box(box), original_code)}


def region(img: np.ndarray, box) -> np.ndarray:
    left, top, right, bottom = box
    return img[top:bottom, left:right]


def dlib_box(box) -> metrics.Box:
    left, top, right, bottom = box
    return top, right, bottom, left


def matched(record_boxes: list, box) -> int | None:
    """The index of the detected face whose box overlaps the annotated `box` most (IoU >= 0.3)."""
    overlaps = [detectors.iou(b, box) for b in record_boxes]
    best = int(np.argmax(overlaps)) if overlaps else None
    return best if best is not None and overlaps[best] >= detectors.IOU_MIN else None


def perfect_paste(base: np.ndarray, original: np.ndarray, records: list[dict], factor: int
                  ) -> np.ndarray:
    """`base` with the original photo's own pixels pasted as enhance.py pastes each enhanced
    face's SR (its aligned 128 px crop, or its unwarped square): what a perfect model would
    give, so the bound that the alignment and the paste leave to any model."""
    out = base.copy()
    for record in (r for r in records if r["enhanced"]):
        if record["route"] == "native":
            corner = enhance.scaled_corner(record["corner"], factor)
            faces.paste_block(out, faces.square(original, corner, factor * record["input_px"]),
                              corner)
        else:
            points = output_landmarks(record, factor)
            faces.paste(out, faces.aligned_crop(original, points, data.HR_SIZE), points)
    return out


def output_landmarks(record: dict, factor: int) -> np.ndarray:
    """A face's 5 landmarks from its enhance.py record, in pixels of the output (cv2.resize's
    pixel-centre rule, as enhance.py pastes)."""
    return faces.scaled([record["landmarks"][p] for p in faces.POINTS], factor)


def downscaled(original: np.ndarray, factor: int, quality: int = 0
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The photo cropped to a multiple of `factor`, its area downscale by `factor` (saved as
    JPEG at `quality` unless 0), and that downscale's plain upscale, the bicubic baseline."""
    h, w = (s // factor * factor for s in original.shape[:2])
    original = original[:h, :w]
    low = cv2.resize(original, (w // factor, h // factor), interpolation=cv2.INTER_AREA)
    if quality:
        low = data.jpeg(low, quality)
    return original, low, enhance.plain_upscale(low, factor)


def check_photo(original: np.ndarray, boxes: list, opt, detector, models,
                quality: int = 0) -> list[dict]:
    """One row per annotated face of one photo, downscaled by area and, with a JPEG `quality`
    (0: none), saved as JPEG before it is enhanced."""
    f = opt.upscale
    original, low, base = downscaled(original, f, quality)
    out = base.copy()
    records = enhance.enhance_photo(low, out, opt, detector, models).records
    perfect = perfect_paste(base, original, records, f)
    rows = []
    for box in boxes:
        k = matched([np.multiply(r["box"], f) for r in records], box)
        record = records[k] if k is not None else {}
        code = metrics.face_encoding(original, dlib_box(box))   # once for both methods
        rows.append({"box": box, "native": record.get("native_crop_size"),
                     "kept": record.get("detail_kept_db"), "enhanced": record.get("enhanced", False),
                     "detected": k is not None, "model": record.get("model"),
                     "bicubic": scores(base, original, box, code),
                     "enhance": scores(out, original, box, code),
                     "perfect_psnr": metrics.psnr(region(perfect, box), region(original, box))})
    return rows


def table(rows: list[dict]) -> str:
    head = ["photo", "crop px (LR)", "detail kept dB", "enhanced by", "PSNR bicubic",
            "PSNR enhance", "PSNR perfect SR", "SSIM bicubic", "SSIM enhance", "id dist bicubic", "id dist enhance"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        b, e = r["bicubic"], r["enhance"]
        by = os.path.basename(os.path.dirname(r["model"])) if r["enhanced"] else "no"
        lines.append(f"| {r['photo']} | {r['native'] or '-'} | {r['kept'] or '-'} | "
                     f"{by} | {b['psnr']:.2f} | {e['psnr']:.2f} | {r['perfect_psnr']:.2f} | "
                     f"{b['ssim']:.4f} | {e['ssim']:.4f} | {b['id']:.3f} | {e['id']:.3f} |")
    enhanced = [r for r in rows if r["enhanced"]]
    for label, group in ((f"all {len(rows)}", rows), (f"the {len(enhanced)} enhanced", enhanced)):
        if group:
            lines.append(mean_row(label, group))
    return "\n".join(lines + ["", distribution(rows)])


def gains(rows: list[dict]) -> np.ndarray:
    """Each face's PSNR gain over bicubic, dB (0 where it was left as the plain upscale)."""
    return np.array([r["enhance"]["psnr"] - r["bicubic"]["psnr"] for r in rows])


def distribution(rows: list[dict]) -> str:
    """The per-face PSNR gain: quantiles over all faces, the share of detected faces enhanced,
    and the enhanced faces that lose more than 0.2 dB."""
    g = gains(rows)
    detected = [r for r in rows if r["detected"]]
    enhanced = [r["enhanced"] for r in detected]
    losers = [f"{r['photo']} {d:+.2f}" for r, d in zip(rows, g) if r["enhanced"] and d < -0.2]
    q = np.percentile(g, [0, 25, 50, 75, 100])
    return (f"PSNR gain per face (dB): min {q[0]:+.2f}, quartiles {q[1]:+.2f} / {q[2]:+.2f} / "
            f"{q[3]:+.2f}, max {q[4]:+.2f}, mean {g.mean():+.2f}; enhanced {sum(enhanced)} of "
            f"{len(detected)} detected faces ({100 * np.mean(enhanced) if enhanced else 0:.0f}%), "
            f"of {len(rows)} annotated; enhanced faces losing more than 0.2 dB: "
            f"{', '.join(losers) or 'none'}")


def mean_row(label: str, rows: list[dict]) -> str:
    mean = {m: {k: np.mean([r[m][k] for r in rows]) for k in ("psnr", "ssim", "id")}
            for m in ("bicubic", "enhance")}
    return (f"| **mean of {label}** | | | {sum(r['enhanced'] for r in rows)} | "
            f"{mean['bicubic']['psnr']:.2f} | {mean['enhance']['psnr']:.2f} | "
            f"{np.mean([r['perfect_psnr'] for r in rows]):.2f} | "
            f"{mean['bicubic']['ssim']:.4f} | {mean['enhance']['ssim']:.4f} | "
            f"{mean['bicubic']['id']:.3f} | {mean['enhance']['id']:.3f} |")


def photo_parser(description: str) -> argparse.ArgumentParser:
    """The flags of the real-photo checks (this one, mask_gain.py): the photos, the factor and
    enhance.py's weights."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--photos", default="../shared/data/photos")
    parser.add_argument("--factor", type=int, default=4, help="downscale and upscale factor")
    parser.add_argument("--weight_path", default=None, help="enhance.py's 8x model (its default)")
    parser.add_argument("--weight_path_4x", default=None,
                        help="enhance.py's 4x model (its default), or none")
    return parser


def load_enhance(args: argparse.Namespace, *flags: str):
    """enhance.py's options (its defaults, but the weights given in `args` and `flags`), its
    models, and the face detector; a missing or damaged checkpoint stops with one line."""
    weights = [flag for name in ("weight_path", "weight_path_4x") if getattr(args, name)
               for flag in (f"--{name}", getattr(args, name))]
    opt = enhance.EnhanceOptions().parse(
        ["--input", args.photos, "--upscale", str(args.factor), *weights, *flags], verbose=False)
    try:
        models = enhance.load_models(opt, enhance.model_prefixes(opt))
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"error: {err}")
    return opt, models, faces.Detector()


def main(argv: list[str] | None = None) -> list[dict]:
    parser = photo_parser(__doc__.splitlines()[0])
    parser.add_argument("--jpeg", type=int_list, default=[0, 75],
                        help="JPEG qualities of the downscaled photo, one check each (0: none)")
    parser.add_argument("--all_faces", action="store_true", help="enhance every face")
    args = parser.parse_args(argv)
    truth = detectors.read_truth(os.path.join(args.photos, "faces.csv"))
    opt, models, detector = load_enhance(args, *(["--all_faces"] if args.all_faces else []))
    checks = {}
    for quality in args.jpeg:
        rows = []
        for name, boxes in sorted(truth.items()):
            original = data.read_image(os.path.join(args.photos, name))
            rows += [{"photo": name, **r}
                     for r in check_photo(original, boxes, opt, detector, models, quality)]
        label = f"{args.factor}x area" + (f", then JPEG {quality}" if quality else "")
        print(f"\n### {label}\n\n{table(rows)}")
        checks[label] = rows
    enhance.close(models)
    return checks


if __name__ == "__main__":
    main()
