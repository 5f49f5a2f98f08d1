"""How far face boxes, landmarks and paste regions move between CPU code paths (issue 22).

    python tools/cpu_spread.py [--factor 4]

Runs enhance.py's search (4x area-downscaled shared photos, bicubic back up, MTCNN boxes, dlib
landmarks, the paste mask's box) once per CPU setting, each in a fresh process, and prints the
largest move against this CPU's default paths, in pixels of the searched image. The settings
hold each library to its AVX2 code: oneDNN (ONEDNN_MAX_CPU_ISA), OpenCV (OPENCV_CPU_DISABLE),
NumPy (NPY_DISABLE_CPU_FEATURES), OpenBLAS (OPENBLAS_CORETYPE), then all at once.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # `python tools/cpu_spread.py` runs too

from tools.avx2_caps import AVX2_CAPS

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"

SETTINGS = {"default": {}, **{name: {name: value} for name, value in AVX2_CAPS.items()},
            "all AVX2 caps": dict(AVX2_CAPS), "TF_ENABLE_ONEDNN_OPTS=0": {"TF_ENABLE_ONEDNN_OPTS": "0"}}


def search(factor: int) -> dict:
    """{photo: [[box, landmarks, paste_box], ...]} for the annotated photos, as enhance.py sees
    them after a `factor` area downscale."""
    import cv2
    from PIL import Image

    import data
    from photos import faces
    detector = faces.Detector()
    names = sorted({row["file"] for row in csv.DictReader(open(PHOTOS / "faces.csv"))})
    found = {}
    for name in names:
        img = np.asarray(Image.open(PHOTOS / name).convert("RGB"))
        h, w = img.shape[:2]
        small = cv2.resize(img, (w // factor, h // factor), interpolation=cv2.INTER_AREA)
        base = cv2.resize(small, (small.shape[1] * factor, small.shape[0] * factor),
                          interpolation=cv2.INTER_CUBIC)
        found[name] = [[list(map(float, f.box)), f.landmarks.tolist(),
                        list(faces.mask_box(f.landmarks, data.HR_SIZE, base.shape))]
                       for f in detector(base)]
    return found


def run(env: dict, factor: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", "--factor", str(factor)],
                         env={**os.environ, **env}, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def largest_moves(a: dict, b: dict) -> tuple[float, float, float, int]:
    """(box, landmark, paste box) largest move in px over the faces both runs found, and how
    many faces one run found and the other did not."""
    moves, missing = np.zeros(3), 0
    for name in a:
        for face in a[name]:
            near = [f for f in b[name] if np.abs(np.subtract(f[0], face[0])).max() < 8]
            if not near:
                missing += 1
                continue
            moves = np.maximum(moves, [np.abs(np.subtract(x, y)).max()
                                       for x, y in zip(face, near[0])])
    return (*moves, missing)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--factor", type=int, default=4)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    opt = parser.parse_args(argv)
    if opt.child:
        print(json.dumps(search(opt.factor)))
        return
    import tf1
    print(f"CPU: {tf1.cpu_info()[0]}; photos downscaled {opt.factor}x; moves in px of the "
          f"searched image against 'default'")
    print("| setting | box | landmarks | paste box | faces found by one only |\n|---|---|---|---|---|")
    reference = run({}, opt.factor)
    for name, env in SETTINGS.items():
        box, mark, paste, missing = largest_moves(reference, run(env, opt.factor))
        print(f"| {name} | {box:.2f} | {mark:.2f} | {paste:.0f} | {missing} |")


if __name__ == "__main__":
    main()
