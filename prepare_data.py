"""Prepare a personal training set from ordinary photographs: detect and align every face with
the template of the training crops (photos/faces.py), and write a 128x128 crop where the face is large
enough in its photo to be a real HR face.

    python prepare_data.py --input RAW_DIR --output datasets/my_faces [--min_size 128]
    python train.py --train_path datasets/my_faces --pretrained checkpoint/eipnet_lfw128

Writes <photo stem>_face<k>.png and manifest.csv (one row per face: source, the sha1 of its
bytes, face index, crop file, box, the five landmarks, the native crop size and scale =
native / 128, status). A photo whose rows are in the manifest and whose crops exist is not
read again, so a rerun (or one after an interruption) does only what is missing; another
photo of the same name (from another --input) is named and left out, never written over.
Unreadable files are named and skipped.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys

from PIL import Image

import data
from photos import faces
import result_folders

MANIFEST = "manifest.csv"
COLUMNS = ["source", "sha1", "face", "crop", "left", "top", "right", "bottom",
           *[f"{p}_{c}" for p in faces.POINTS for c in "xy"], "native_size", "scale", "status"]


def outdated(row: dict, out_dir: str, min_size: int) -> bool:
    """Whether a manifest row must be made again: cut short (a manifest of an older version, or
    edited by hand), its crop missing, or its face too small for an earlier --min_size and
    large enough for this one."""
    if any(row.get(c) is None for c in ("source", "crop", "status", "native_size")):
        return True
    if row["crop"]:
        return not os.path.exists(os.path.join(out_dir, row["crop"]))
    return row["status"].startswith("too small") and float(row["native_size"]) >= min_size


def done_sources(out_dir: str, min_size: int) -> tuple[set[str], list[dict]]:
    """The photos already prepared (their crops all on disk, every face decided as this
    --min_size decides it) and the manifest rows to keep."""
    path = os.path.join(out_dir, MANIFEST)
    if not os.path.exists(path):
        return set(), []
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("source")]
    redo = {r["source"] for r in rows if outdated(r, out_dir, min_size)}
    kept = [r for r in rows if r["source"] not in redo]
    return {r["source"] for r in kept}, kept


def same_name_others(paths: list[str], rows: list[dict]) -> list[str]:
    """The photos of `paths` whose name the manifest holds for a photo of other bytes (another
    --input's IMG_0001.jpg): taken as prepared, they would be skipped without a word."""
    recorded = {r["source"]: r.get("sha1") for r in rows}
    # only a photo whose name the manifest records is read for its digest
    return [p for p in paths if recorded.get(os.path.basename(p))
            and recorded[os.path.basename(p)] != data.file_digest(p)]


def start_manifest(path: str, rows: list[dict]) -> None:
    """Write the header and the rows kept to `path` whole: a kill during the rewrite leaves
    the old manifest, never a short one."""
    with open(path + ".next", "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(path + ".next", path)


def face_rows(path: str, stem: str, rgb, detector: faces.Detector, min_size: int,
              out_dir: str) -> list[dict]:
    """Detect, align and write the crops of one photo as <stem>_face<k>.png; one manifest row
    per face (a row with status "no face" when there is none, so that a rerun skips the
    photo)."""
    rows, source = [], {"source": os.path.basename(path), "sha1": data.file_digest(path)}
    for k, face in enumerate(detector(rgb)):
        native = faces.native_size(face.landmarks)
        large = native >= min_size
        crop = f"{stem}_face{k}.png" if large else ""
        if large:
            Image.fromarray(faces.aligned_crop(rgb, face.landmarks, data.HR_SIZE)).save(
                os.path.join(out_dir, crop))
        rows.append({**source, "face": k, "crop": crop,
                     **dict(zip(("left", "top", "right", "bottom"), (round(v, 1) for v in face.box))),
                     **{f"{p}_{c}": round(float(v), 2)
                        for p, xy in zip(faces.POINTS, face.landmarks) for c, v in zip("xy", xy)},
                     "native_size": round(native, 1), "scale": round(native / data.HR_SIZE, 3),
                     "status": "written" if large else f"too small (< --min_size {min_size})"})
    return rows or [{**source, "face": "", "crop": "", "status": "no face"}]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--input", required=True, help="folder of photographs")
    parser.add_argument("--output", default="datasets/my_faces", help="folder for the crops")
    parser.add_argument("--min_size", type=int, default=data.HR_SIZE,
                        help="smallest native crop side (px in the photo) kept as an HR face")
    opt = parser.parse_args(argv)
    try:
        paths = data.list_images(opt.input, "--input")
        result_folders.claim(opt.output, "prepare_data.py", "--output", {"--input": opt.input},
                             legacy=(MANIFEST,))
    except (data.DataError, ValueError) as err:
        sys.exit(f"error: {err}")
    done, rows = done_sources(opt.output, opt.min_size)
    smaller = [r["crop"] for r in rows if r["crop"] and float(r["native_size"]) < opt.min_size]
    if smaller:   # crops are never deleted: a higher --min_size only stops new ones
        print(f"{len(smaller)} crops of an earlier run are smaller than --min_size "
              f"{opt.min_size} px (e.g. {smaller[0]}): kept; delete them to leave them out")
    others = same_name_others(paths, rows)
    if others:
        print(f"left out {len(others)} photos whose name the manifest holds for another photo "
              f"(an earlier --input's): {result_folders.listed(others)}; rename them to add them")
    todo = [p for p in paths if os.path.basename(p) not in done]
    # stems unique among the manifest's photos too: a.png never writes over a.jpg's crops
    names = sorted({os.path.basename(p) for p in paths} | {r["source"] for r in rows})
    stems = result_folders.output_stems(names)
    print(f"{len(paths) - len(todo)} photos already prepared, {len(todo)} to do")
    detector = faces.Detector()
    unreadable = []
    manifest = os.path.join(opt.output, MANIFEST)
    start_manifest(manifest, rows)
    with open(manifest, "a", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        for path, rgb in faces.readable(todo, unreadable):
            name = os.path.basename(path)
            found = face_rows(path, stems[name], rgb, detector, opt.min_size, opt.output)
            writer.writerows(found)
            f.flush()   # a photo's rows once its crops are on disk: an interruption loses no crop
            rows += found
    summary = {"photos": len(paths) - len(unreadable), "unreadable": len(unreadable),
               "faces": sum(r["status"] != "no face" for r in rows),
               "written": sum(r["status"] == "written" for r in rows),
               "too_small": sum(r["status"].startswith("too small") for r in rows)}
    print(f"{summary['faces']} faces in {summary['photos']} photos: {summary['written']} crops "
          f"written, {summary['too_small']} faces skipped as smaller than {opt.min_size} px, "
          f"{summary['unreadable']} unreadable files skipped; manifest in "
          f"{os.path.join(opt.output, MANIFEST)}")
    return summary


if __name__ == "__main__":
    main()
