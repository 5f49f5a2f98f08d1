"""A generator's PSNR gain over bicubic by the face's size in the photo (docs/photos.md):
each lfw128/val face is area-averaged to n px, brought to the model's input as enhance.py
brings a face of that size (faces.aligned_crop: bicubic up, or area down; a 4x EIPNet takes a
face larger than its input as it is: enhance.py's native route), super-resolved, and
scored at the size enhance.py pastes it at in a 4x upscale (4n px, both sides area-averaged
from 128; past 32 px, at 128 px, the HR's own size) against a bicubic 4x of the n px face. No blur, noise or JPEG: the model's gain on
clean faces of the sizes a downscaled photo holds.

    python tools/gain_by_size.py --weight_path checkpoint/eipnet_x4_photo [--sizes 12,16,20,24,28,32] [--jpeg 75] [--route aligned]
"""
from __future__ import annotations

import argparse
import glob
import os
from pathlib import Path
import sys

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # `python tools/gain_by_size.py` runs too

import checkpoints
import data
import enhance
from evaluation import metrics
from networks.restored import Generator
from options.arg_types import int_list
from options.test_options import TestOptions

UPSCALE = 4   # enhance.py's default


ROUTES = ("enhance", "aligned", "native")   # enhance: the route enhance.py takes for the size


def gains(generator, hrs: np.ndarray, n: int, quality: int = 0, route: str = "enhance"
          ) -> np.ndarray:
    """Per face, PSNR(SR) - PSNR(bicubic) at 4n px, dB, for faces of n px in the photo (saved
    as JPEG at `quality` unless 0), fed by `route` (ROUTES)."""
    small = [data.area_downscale(hr, n) for hr in hrs]
    if quality:
        small = [data.jpeg(s, quality) for s in small]
    if route == "native" or (route == "enhance"
                             and enhance.native_route(n, generator, float("inf"))):
        srs = generator.native(np.stack(small))
    else:
        srs = generator(np.stack([data.resize_face(s, generator.lr_size) for s in small]))[0]
    out = min(UPSCALE * n, data.HR_SIZE)   # past 128 px both are scored at the HR's size
    result = []
    for hr, s, sr in zip(hrs, small, metrics.to_uint8(srs)):
        ref = data.area_downscale(hr, out)
        bicubic = data.area_downscale(cv2.resize(s, (UPSCALE * n,) * 2,
                                                 interpolation=cv2.INTER_CUBIC), out)
        result.append(metrics.psnr(ref, data.area_downscale(sr, out)) - metrics.psnr(ref, bicubic))
    return np.array(result)


def add_val_arguments(parser: argparse.ArgumentParser, faces: int) -> None:
    """--weight_path, --model, --val and --faces, of this tool and tools/gain_map.py."""
    parser.add_argument("--weight_path", required=True, help="a generator's checkpoint (any --scale)")
    parser.add_argument("--model", default="eipnet")
    parser.add_argument("--val", default="../shared/data/lfw128/val")
    parser.add_argument("--faces", type=int, default=faces, help="the first N faces of --val")


def generator_and_faces(args: argparse.Namespace) -> tuple[Generator, np.ndarray]:
    """The generator of --weight_path and the first --faces faces of --val (RGB uint8), or an
    exit in one line naming what is missing."""
    paths = sorted(glob.glob(os.path.join(args.val, "*")))[:args.faces]
    if not paths:
        sys.exit(f"error: no faces in {args.val}: pass --val a folder of 128x128 faces")
    opt = TestOptions().parse(["--model", args.model, "--weight_path", args.weight_path],
                              verbose=False)
    try:
        generator = Generator(opt, checkpoints.intact(checkpoints.resolve(args.weight_path)))
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"error: {err}")
    return generator, np.stack([data.read_image(p) for p in paths])


def main(argv: list[str] | None = None) -> dict[int, np.ndarray]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_val_arguments(parser, faces=64)
    parser.add_argument("--sizes", type=int_list, default=[12, 16, 20, 24, 28, 32],
                        help="face sizes in the photo, px (the crop's side)")
    parser.add_argument("--jpeg", type=int, default=0,
                        help="the n px faces saved as JPEG at this quality first (0: not)")
    parser.add_argument("--route", default="enhance", choices=ROUTES,
                        help="how a face reaches the model: as enhance.py sends a face of its "
                             "size, aligned to the model's input, or unwarped at its own size")
    args = parser.parse_args(argv)
    generator, hrs = generator_and_faces(args)
    print(f"{args.weight_path}, {len(hrs)} faces of {args.val}, {args.route} route"
          + (f", JPEG {args.jpeg}" if args.jpeg else "") + "\n\n"
          "| face px in the photo | pasted at px (scored at) | PSNR gain over bicubic, mean (dB) | faces ahead |\n"
          "|---|---|---|---|")
    result = {}
    for n in args.sizes:
        result[n] = g = gains(generator, hrs, n, args.jpeg, args.route)
        print(f"| {n} | {UPSCALE * n} ({min(UPSCALE * n, data.HR_SIZE)}) | {g.mean():+.2f} | "
              f"{np.mean(g > 0):.0%} |")
    generator.close()
    return result


if __name__ == "__main__":
    main()
