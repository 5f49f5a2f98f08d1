"""Where in the 128 px crop a generator beats bicubic (docs/photos.md): over lfw128/val faces
degraded by --degradation, the PSNR gain of the SR over a bicubic upscale of the same LR face,
on the face (the box of the template's five landmarks grown by half an eye distance) and on
the rest of the crop (hair and background). It tells how much of the crop enhance.py pastes.

    python tools/gain_map.py --weight_path checkpoint/eipnet_lfw128 [--degradation photo]
"""
from __future__ import annotations

import argparse
from pathlib import Path
import sys

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # `python tools/gain_map.py` runs too

import data
from evaluation import metrics
from photos import faces
from tools import gain_by_size


def face_region(size: int = data.HR_SIZE) -> np.ndarray:
    """(size, size) bool: the box of the template's landmarks grown by half an eye distance."""
    t = faces.template(size)
    grow = 0.5 * np.linalg.norm(t[1] - t[0])
    (x0, y0), (x1, y1) = np.floor(t.min(0) - grow).astype(int), np.ceil(t.max(0) + grow).astype(int)
    region = np.zeros((size, size), bool)
    region[max(y0, 0):y1 + 1, max(x0, 0):x1 + 1] = True
    return region


def squared_errors(generator, hrs: np.ndarray, degradation: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel squared error (128, 128), summed over faces and channels, of the SR and of the
    bicubic upscale of each face's LR."""
    lrs = np.stack([data.downscale(hr, degradation, size=generator.lr_size) for hr in hrs])
    sr_err = np.zeros(hrs.shape[1:3])
    for batch in data.iterate_batches(list(range(len(hrs))), 32):
        sr = metrics.to_uint8(generator(lrs[batch])[0]).astype(np.float64)
        sr_err += ((sr - hrs[batch]) ** 2).sum((0, 3))
    bicubic = np.stack([cv2.resize(lr, hrs.shape[1:3], interpolation=cv2.INTER_CUBIC) for lr in lrs])
    return sr_err, ((bicubic.astype(np.float64) - hrs) ** 2).sum((0, 3))


def gains(sr_err: np.ndarray, bicubic_err: np.ndarray) -> dict[str, float]:
    """PSNR gain of the SR over bicubic (dB) on the face, the rest of the crop and all of it."""
    face = face_region(len(sr_err))
    return {name: float(10 * np.log10(bicubic_err[where].sum() / sr_err[where].sum()))
            for name, where in (("face", face), ("rest of the crop", ~face),
                                ("whole crop", np.ones_like(face)))}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    gain_by_size.add_val_arguments(parser, faces=200)
    parser.add_argument("--degradation", default="photo", choices=data.DEGRADATIONS)
    args = parser.parse_args(argv)
    generator, hrs = gain_by_size.generator_and_faces(args)
    try:
        result = gains(*squared_errors(generator, hrs, args.degradation))
    finally:
        generator.close()
    print(f"{args.weight_path}, {len(hrs)} faces of {args.val}, {args.degradation} degradation"
          "\n\n| region | PSNR gain over bicubic (dB) |\n|---|---|")
    for name, gain in result.items():
        print(f"| {name} | {gain:+.2f} |")
    return result


if __name__ == "__main__":
    main()
