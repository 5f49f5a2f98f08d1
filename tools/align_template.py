"""Measure the crop template that whole-photo faces are aligned to: the mean position of the
five landmarks (faces.POINTS) over the training faces, found by the same detector and
landmarks that enhance.py and prepare_data.py use. Writes photos/face_template.json.

    python tools/align_template.py --input ../shared/data/lfw128/train
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # `python tools/align_template.py` runs too

import data
from photos import faces


def central_face(found: list[faces.Face], size: int) -> faces.Face | None:
    """The detected face nearest the centre of an aligned crop (a training crop holds one
    face; a second, smaller one is a bystander)."""
    if not found:
        return None
    return min(found, key=lambda f: np.hypot(f.landmarks[:, 0].mean() - size / 2,
                                             f.landmarks[:, 1].mean() - size / 2))


def measure(paths: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean and standard deviation (5, 2) of the landmarks over the faces found, and how many
    images had none."""
    detector = faces.Detector()
    points, missed = [], 0
    for path in tqdm(paths, desc="landmarks"):
        img = data.read_image(path)
        face = central_face(detector(img), img.shape[0])
        if face is None:
            missed += 1
        else:
            points.append(face.landmarks)
    points = np.stack(points)
    return points.mean(0), points.std(0), missed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default="../shared/data/lfw128/train",
                        help="aligned 128x128 training faces")
    parser.add_argument("--output", default=faces.TEMPLATE_FILE)
    opt = parser.parse_args(argv)
    paths = data.list_images(opt.input)
    mean, std, missed = measure(paths)
    result = {"source": opt.input, "crop_size": data.HR_SIZE, "faces": len(paths) - missed,
              "no_face_found": missed,
              "points": {k: [round(float(v), 2) for v in p] for k, p in zip(faces.POINTS, mean)},
              "std": {k: [round(float(v), 2) for v in s] for k, s in zip(faces.POINTS, std)}}
    with open(opt.output, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
