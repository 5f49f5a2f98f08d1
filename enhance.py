"""Whole-photo face super-resolution: upscale a photograph (bicubic), find its faces, align each
to the training crop template, super-resolve it and paste it back with a feathered mask.
Nothing outside the face masks differs from the plain upscale.

    python enhance.py --input PHOTO_OR_DIR --result_dir OUT [--upscale 4] [--weight_path W]

Each face of up to --max_native_px (40 px) goes to the 8x model (--weight_path) unwarped: the
square of the photo that bounds its aligned crop, at the face's own size, super-resolved 8x and
area-averaged to the output's scale, so no warp blurs it (docs/photos.md). With a 4x model
(--weight_path_4x, e.g. checkpoint/eipnet_x4_photo), faces of 17-32 px go to it aligned
(32x32 input) and faces of 33-40 px unwarped. Larger faces go aligned to the model with the
largest input, when that input keeps the face (--min_kept_db).

Writes to --result_dir (a new folder, or one of enhance.py's: result_folders.py), per photo
<stem> (the file name without its extension, or with it when two photos share a stem):
<stem>_enhanced.png, <stem>_upscaled.png (the plain bicubic upscale), <stem>_face<k>_lr.png and
_sr.png (each enhanced face's model input and the SR pasted: 128x128 for an aligned face),
<stem>_compare.png (before/after with crops) and <stem>_faces.json (each face's model, route
and why).
A box that is no face by its MTCNN score, template fit, size or dlib's face score is never
enhanced (--min_score, --max_template_fit, --min_face_px, --min_dlib_score). Which faces are enhanced is measured per face
(--min_kept_db); --all_faces forces every face.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Iterator, NamedTuple

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from tqdm import tqdm

import checkpoints
import data
from evaluation import metrics
from networks import generators
from options.enhance_options import EnhanceOptions
from networks.restored import Generator
from photos import faces
import result_folders

# faces are searched in the plain upscale up to this size (a 6000x4000 photo); MTCNN needs about
# 70 bytes per pixel searched (1.7 GB here)
DETECT_PIXELS = 24_000_000
FIGURE_PX = 2048   # the largest side of an image shown in the before/after figure


def plain_upscale(rgb: np.ndarray, upscale: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (w * upscale, h * upscale), interpolation=cv2.INTER_CUBIC)


class Model(NamedTuple):
    weights: str      # the checkpoint prefix, as the JSON records it
    gen: Generator    # its input is gen.lr_size px


def choose(native: float, models: list[Model]) -> Model:
    """The model whose input holds all of a face with a `native` px crop: the smallest input
    at least that size; for larger faces, the largest input (models: by input size)."""
    return next((m for m in models if native <= m.gen.lr_size), models[-1])


def native_route(native: float, gen: Generator, max_px: float) -> bool:
    """Whether a face of `native` px goes to `gen` unwarped (faces.native_crop): an EIPNet's
    face of at most `max_px` (--max_native_px), unless it fits a 4x model's input. Measured by
    tools/gain_by_size.py on lfw128/val, clean and JPEG 75 (docs/photos.md): the 8x model gains
    more from the face as it is than from its 16 px aligned crop, the 4x one less from faces
    that fit its 32 px input; above that input, the warp's blur costs more than the model
    gains."""
    fits_4x = gen.options.scale == 4 and native <= gen.lr_size
    return gen.options.model == "eipnet" and native <= max_px and not fits_4x


def model_input(rgb: np.ndarray, landmarks: np.ndarray, model: Model, opt
                ) -> tuple[np.ndarray, float, tuple[int, int] | None]:
    """The face's input to `model`, how much of the face it keeps, and where it sits in `rgb`.
    On the native route: the unwarped native crop, which keeps all (inf), and its top-left
    pixel. Otherwise the size x size aligned crop (faces.aligned_crop) and the PSNR (dB)
    between the aligned face at its native resolution and the input brought back to that size
    (bicubic; a crop of `size` px or smaller keeps all, inf), and None. One warp serves both."""
    size, native = model.gen.lr_size, faces.native_size(landmarks)
    if native_route(native, model.gen, opt.max_native_px):
        crop, corner = faces.native_crop(rgb, landmarks)
        return crop, float("inf"), corner
    native = int(round(native))
    if native <= size:
        return faces.aligned_crop(rgb, landmarks, size), float("inf"), None
    crop = faces.aligned_crop(rgb, landmarks, native)
    lr = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    return lr, float(metrics.psnr(crop, cv2.resize(lr, (native, native),
                                                   interpolation=cv2.INTER_CUBIC))), None


def face_size(face: faces.Face) -> float:
    """The shorter side of the detector's box (its width, as MTCNN's boxes are taller)."""
    left, top, right, bottom = face.box
    return min(right - left, bottom - top)


def not_a_face(face: faces.Face, rgb: np.ndarray, opt) -> str | None:
    """Why the box `face` (pixels of the photo `rgb`) is not taken for a face, by the rule it
    fails (thresholds measured by tools/face_filter_check.py: docs/photos.md), or None. Checked
    before --all_faces: a box that is not a face is never enhanced."""
    fit, size = faces.template_fit(face.landmarks), face_size(face)
    if face.score < opt.min_score:
        return f"not a face: MTCNN score {face.score:.3f} < {opt.min_score:g}"
    if fit > opt.max_template_fit:
        return (f"not a face: landmarks fit the template at {fit:.1f} px RMS > "
                f"{opt.max_template_fit:g}")
    if size < opt.min_face_px:
        return f"not a face: face {size:.0f} px < {opt.min_face_px:g} px"
    second = faces.dlib_score(rgb, face.box)
    if second < opt.min_dlib_score:
        return f"not a face: dlib's face score {second:.2f} < {opt.min_dlib_score:g}"
    return None


def decide(kept_db: float, size: int, opt, native: bool = False) -> tuple[bool, str]:
    """Whether a face whose size x size input keeps `kept_db` of it is enhanced, and why
    (`native`: the input is the face's unwarped native crop)."""
    model = f"the {size}x{size} input"
    if native:
        return True, (f"the face's unwarped {size}x{size} crop is the model's input (faces up "
                      f"to --max_native_px {opt.max_native_px:g} px): no warp blurs it")
    if kept_db == float("inf"):
        return True, f"the face's crop is {size} px or less: {model} holds all of it"
    if kept_db >= opt.min_kept_db:
        return True, f"{model} keeps the face ({kept_db:.1f} dB >= {opt.min_kept_db} dB)"
    if opt.all_faces:
        return True, f"--all_faces ({model} keeps only {kept_db:.1f} dB)"
    return False, (f"{model} would lose detail ({kept_db:.1f} dB < {opt.min_kept_db} "
                   f"dB): plain upscale kept; --all_faces forces it")


def rounded(a) -> list:
    return np.round(np.asarray(a, np.float64), 2).tolist()


class Enhanced(NamedTuple):
    records: list[dict]   # one per face found
    crops: list[tuple]    # (LR input, SR, bicubic region) of each enhanced face
    preview: np.ndarray   # the plain upscale before the faces were pasted, for the figure


def search_scale(rgb: np.ndarray, upscale: int) -> float:
    """The scale of the photo in which faces are searched: the plain upscale, where small faces
    are large enough for MTCNN, unless it is larger than DETECT_PIXELS (then the photo scaled to
    that size: MTCNN's memory grows with the pixels it searches)."""
    h, w = rgb.shape[:2]
    return min(float(upscale), float(np.sqrt(DETECT_PIXELS / (h * w))))


def detect(rgb: np.ndarray, canvas: np.ndarray, upscale: int, detector: faces.Detector
           ) -> tuple[list[faces.Face], float]:
    """The faces, searched in the plain upscale `canvas` or a smaller copy (search_scale), and
    that scale."""
    scale = search_scale(rgb, upscale)
    if scale == upscale:
        return detector(canvas), scale
    h, w = rgb.shape[:2]
    tqdm.write(f"a {w}x{h} photo: faces searched at {scale:.2f}x, not {upscale}x, to bound "
               f"memory; faces under {faces.MIN_FACE / scale:.0f} px in the photo are missed")
    size = (int(round(w * scale)), int(round(h * scale)))
    return detector(cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)), scale


def preview(img: np.ndarray) -> np.ndarray:
    """A copy of `img` no larger than FIGURE_PX a side (area-averaged): the figure is 900 px
    wide, and a whole big photo in matplotlib costs several bytes per pixel."""
    h, w = img.shape[:2]
    scale = FIGURE_PX / max(h, w)
    if scale >= 1:
        return img.copy()
    return cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))),
                      interpolation=cv2.INTER_AREA)


def enhance_photo(rgb: np.ndarray, canvas: np.ndarray, opt, detector: faces.Detector,
                  models: list[Model]) -> Enhanced:
    """Pastes the enhanced faces of `rgb` into `canvas`, its plain upscale, in place; each
    model runs on opt.batchSize of its aligned faces at a time, on unwarped ones one by one."""
    u = opt.upscale
    found, scale = detect(rgb, canvas, u, detector)
    records, inputs, pasted, picked, corners = [], [], [], [], []
    for face in found:
        mine = faces.in_photo(face, scale)   # in pixels of the input photo
        native = faces.native_size(mine.landmarks)
        picked.append(choose(native, models))
        lr, kept, corner = model_input(rgb, mine.landmarks, picked[-1], opt)
        inputs.append(lr)
        corners.append(corner)
        # in pixels of the output: as found when searched there
        pasted.append(face.landmarks if scale == u else faces.scaled(mine.landmarks, u))
        false = not_a_face(mine, rgb, opt)
        enhanced, why = (False, false) if false else decide(kept, len(lr), opt, corner is not None)
        records.append({"box": rounded(mine.box), "score": round(face.score, 4),
                        "landmarks": dict(zip(faces.POINTS, rounded(mine.landmarks))),
                        "template_fit_px": round(faces.template_fit(mine.landmarks), 2),
                        "native_crop_size": round(native, 1),
                        "detail_kept_db": None if np.isinf(kept) else round(kept, 2),
                        "enhanced": enhanced, "model": picked[-1].weights if enhanced else None,
                        "route": ("aligned" if corner is None else "native") if enhanced else None,
                        "input_px": len(lr),
                        # the unwarped square's top-left pixel (x, y) in the photo
                        "corner": None if corner is None else list(corner),
                        "reason": why})
    chosen = [k for k, r in enumerate(records) if r["enhanced"]]
    # the bicubic regions before any face is pasted: neighbouring faces' regions may overlap
    boxes = [faces.mask_box(pasted[k], data.HR_SIZE, canvas.shape) if corners[k] is None else
             faces.block_box(scaled_corner(corners[k], u), u * len(inputs[k]), canvas.shape)
             for k in chosen]
    bicubic = dict(zip(chosen, (canvas[y0:y1, x0:x1].copy() for x0, y0, x1, y1 in boxes)))
    before = preview(canvas)
    crops = {}
    for k, high in super_resolved([k for k in chosen if corners[k] is None], inputs, picked,
                                  opt.batchSize):
        records[k]["paste_box"] = faces.paste(canvas, high, pasted[k])   # output pixels
        crops[k] = (inputs[k], high, bicubic[k])
    for k in (k for k in chosen if corners[k] is not None):   # one size per face: one by one
        high = native_sr(picked[k].gen, inputs[k], u)
        records[k]["paste_box"] = faces.paste_block(canvas, high, scaled_corner(corners[k], u))
        crops[k] = (inputs[k], high, bicubic[k])
    return Enhanced(records, [crops[k] for k in chosen], before)


def scaled_corner(corner: tuple[int, int], upscale: int) -> tuple[int, int]:
    """An input pixel's top-left output pixel in the plain upscale (cv2.resize's rule)."""
    return upscale * corner[0], upscale * corner[1]


def super_resolved(chosen: list[int], inputs: list[np.ndarray], picked: list[Model],
                   batch_size: int) -> Iterator[tuple[int, np.ndarray]]:
    """(k, uint8 SR) of each aligned face k in `chosen`, batch_size faces of a model at a time."""
    for m in dict.fromkeys(picked[k] for k in chosen):
        for batch in data.iterate_batches([k for k in chosen if picked[k] is m], batch_size):
            yield from zip(batch, metrics.to_uint8(m.gen(np.stack([inputs[k] for k in batch]))[0]))


def native_sr(gen: Generator, lr: np.ndarray, upscale: int) -> np.ndarray:
    """The SR of an unwarped n x n crop, brought to the output's upscale x n px when the
    model's scale is another (area down, bicubic up: the pixel-centre rule of the upscale)."""
    high = metrics.to_uint8(gen.native(lr[None]))[0]
    side = upscale * len(lr)
    if len(high) == side:
        return high
    method = cv2.INTER_AREA if len(high) > side else cv2.INTER_CUBIC
    return cv2.resize(high, (side, side), interpolation=method)


def before_after(result: Enhanced, out: np.ndarray, path: str, title: str) -> None:
    """Plain upscale | enhanced, and under them each enhanced face: LR input, the plain upscale
    of its region, the enhanced region; each labelled with the face's index in its files."""
    enhanced = [(k, r["paste_box"]) for k, r in enumerate(result.records) if r["enhanced"]]
    rows = 1 + len(enhanced)
    fig = Figure(figsize=(9, 4 + 2.2 * len(enhanced)))
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(rows, 6, height_ratios=[4] + [2.2] * len(enhanced))
    for col, (name, img) in enumerate((("bicubic upscale", result.preview),
                                       ("enhanced", preview(out)))):
        ax = fig.add_subplot(grid[0, 3 * col:3 * col + 3])
        ax.imshow(img)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    for row, ((low, _, region), (k, (x0, y0, x1, y1))) in enumerate(
            zip(result.crops, enhanced), start=1):
        panels = ((f"LR {len(low)}x{len(low)}", low), ("bicubic", preview(region)),
                  ("enhanced", preview(out[y0:y1, x0:x1])))
        for col, (name, img) in enumerate(panels):
            ax = fig.add_subplot(grid[row, 2 * col:2 * col + 2])
            ax.imshow(img, interpolation="nearest")
            ax.set_title(f"face {k}: {name}", fontsize=8)
            ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=100, bbox_inches="tight")


def stale_outputs(stem: str, out_dir: str, records: list[dict], figure: bool) -> list[str]:
    """Face crops and the figure of `stem` in out_dir that this run did not write (an earlier
    run's)."""
    written = {f"{stem}_face{k}_{t}.png" for k, r in enumerate(records) if r["enhanced"]
               for t in ("lr", "sr")} | ({f"{stem}_compare.png"} if figure else set())
    pattern = re.compile(re.escape(stem) + r"(_face\d+_(lr|sr)|_compare)\.png")
    return sorted(n for n in os.listdir(out_dir) if pattern.fullmatch(n) and n not in written)


def write_outputs(stem: str, out_dir: str, out: np.ndarray, result: Enhanced,
                  figure: bool) -> None:
    """All of a photo's files but <stem>_upscaled.png, written before the faces are pasted."""
    Image.fromarray(out).save(os.path.join(out_dir, f"{stem}_enhanced.png"))
    enhanced = [k for k, r in enumerate(result.records) if r["enhanced"]]
    for k, (low, high, _) in zip(enhanced, result.crops):
        Image.fromarray(low).save(os.path.join(out_dir, f"{stem}_face{k}_lr.png"))
        Image.fromarray(high).save(os.path.join(out_dir, f"{stem}_face{k}_sr.png"))
    with open(os.path.join(out_dir, f"{stem}_faces.json"), "w") as f:
        json.dump({"size": list(out.shape[1::-1]), "faces": result.records}, f, indent=1)
    figure = figure and bool(result.records)
    if figure:
        before_after(result, out, os.path.join(out_dir, f"{stem}_compare.png"), stem)
    stale = stale_outputs(stem, out_dir, result.records, figure)
    if stale:
        tqdm.write(f"kept {len(stale)} files of an earlier run that this one did not "
                   f"write: {result_folders.listed(stale)}")


def photos(path: str) -> list[str]:
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no photo or folder at {path!r}: pass --input a photo or a "
                                f"folder of photos")
    return data.list_images(path, "--input")


def enhance_file(path: str, rgb: np.ndarray, stem: str, opt, detector, models) -> None:
    """One photo: its plain upscale written, then the faces pasted into it and the rest."""
    canvas = plain_upscale(rgb, opt.upscale)
    Image.fromarray(canvas).save(os.path.join(opt.result_dir, f"{stem}_upscaled.png"))
    result = enhance_photo(rgb, canvas, opt, detector, models)
    write_outputs(stem, opt.result_dir, canvas, result, not opt.no_figures)
    done = sum(r["enhanced"] for r in result.records)
    tqdm.write(f"{path}: {len(result.records)} faces found, {done} enhanced"
               if result.records else
               f"{path}: no face found; written upscaled {opt.upscale}x, unchanged")


def model_prefixes(opt) -> list[str]:
    """The intact checkpoint prefixes of --weight_path and of --weight_path_4x, if one is given
    (by default none: the 8x model takes every face unwarped and beat the 4x one on the shared
    photos and on lfw128/val, docs/photos.md)."""
    x4 = opt.weight_path_4x
    prefixes = [checkpoints.intact(checkpoints.resolve(opt.weight_path))]
    if x4.lower() != "none":
        prefixes.append(checkpoints.intact(checkpoints.resolve(x4, "--weight_path_4x"),
                                           "--weight_path_4x"))
    if len(prefixes) > 1 and x4_scale(prefixes[1]) != 4:
        raise ValueError(f"--weight_path_4x {x4!r} is not an EIPNet trained with --scale 4: "
                         f"pass one, or --weight_path_4x none")
    return prefixes


def x4_scale(prefix: str) -> int | None:
    """The --scale of the EIPNet at `prefix`, None if it is another model."""
    try:
        return generators.GENERATORS["eipnet"].architecture(prefix)["scale"]
    except KeyError:
        return None


def load_models(opt, prefixes: list[str]) -> list[Model]:
    """The generators of model_prefixes(opt), by input size (the 8x model's 16 px first)."""
    models = [Model(prefixes[0], Generator(opt, prefixes[0]))]
    if len(prefixes) > 1:
        # enhance.py hides --scale: set it, so that the checkpoint's 4 is no override to note
        eipnet = argparse.Namespace(**{**vars(opt), "model": "eipnet", "scale": 4})
        models.append(Model(prefixes[1], Generator(eipnet, prefixes[1])))
    return sorted(models, key=lambda m: m.gen.lr_size)


def close(models: list[Model]) -> None:
    for m in models:
        m.gen.close()


def main(argv: list[str] | None = None) -> list[str]:
    """Enhances every readable photo; returns the paths of the photos that could not be read."""
    opt = EnhanceOptions().parse(argv, verbose=False)
    try:
        if opt.upscale < 1:
            raise ValueError(f"--upscale {opt.upscale}: pass a whole factor of 1 or more")
        paths = photos(opt.input)
        models = load_models(opt, model_prefixes(opt))   # bad weights stop before the claim
        result_folders.claim(opt.result_dir, "enhance.py", "--result_dir", {"--input": opt.input},
                             legacy=("*_faces.json",))
    except (FileNotFoundError, data.DataError, ValueError, OSError) as err:
        sys.exit(f"error: {err}")
    detector = faces.Detector()
    stems = result_folders.output_stems([os.path.basename(p) for p in paths])
    unreadable = []
    for path, rgb in faces.readable(paths, unreadable):
        enhance_file(path, rgb, stems[os.path.basename(path)], opt, detector, models)
    close(models)
    if unreadable:
        print(f"skipped {len(unreadable)} unreadable files: {result_folders.listed(unreadable)}")
    print(f"results in {opt.result_dir}")
    return unreadable


if __name__ == "__main__":
    main()
