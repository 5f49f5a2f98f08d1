"""Whole photographs (issue 18) on the real annotated photos of ../shared/data/photos: detection
recall, enhance.py end to end on the photos downscaled 4x, alignment to the template, bad
input, prepare_data.py followed by a short fine-tuning from the shipped weights."""
from __future__ import annotations

import collections
import csv
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, SHARED, random_generator
from tf1 import tf

pytestmark = pytest.mark.cpu_numbers   # reruns under tools/avx2_caps.py in .ci/run

PHOTOS = SHARED / "data" / "photos"
SHIPPED = ROOT / "checkpoint" / "eipnet_lfw128"
FACTOR = 4


def annotated() -> dict[str, list[tuple]]:
    boxes: dict[str, list[tuple]] = {}
    with open(PHOTOS / "faces.csv") as f:
        for row in csv.DictReader(f):
            t, l, w, h = (int(row[k]) for k in ("top", "left", "width", "height"))
            boxes.setdefault(row["file"], []).append((l, t, l + w, t + h))
    return boxes


def overlap(a, b) -> float:
    """Intersection over union of two (left, top, right, bottom) boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def rgb(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def downscaled(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    return cv2.resize(img, (w // FACTOR, h // FACTOR), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def detector():
    from photos import faces
    return faces.Detector()


def recall(detector, degrade) -> int:
    found = 0
    for name, boxes in annotated().items():
        img = rgb(PHOTOS / name)
        if degrade:   # 4x area down, bicubic back up: what enhance.py searches
            small = downscaled(img)
            img = cv2.resize(small, (small.shape[1] * FACTOR, small.shape[0] * FACTOR),
                             interpolation=cv2.INTER_CUBIC)
        detected = [f.box for f in detector(img)]
        found += sum(any(overlap(t, d) >= 0.3 for d in detected) for t in boxes)
    return found


def test_detection_recall_native_and_degraded(detector):
    """At least 16/18 annotated faces at IoU >= 0.3 on the native photos; at least 15/18 on the
    4x-downscaled ones (docs/photos.md table: 17 and 17)."""
    assert recall(detector, degrade=False) >= 16
    assert recall(detector, degrade=True) >= 15


def test_aligned_crops_put_the_eyes_and_mouth_on_the_template(detector):
    """Each face of the native photos aligned to 128 px: the eyes and mouth corners found again
    in the crop sit where the template (photos/face_template.json) says, within 3 px for half of
    them and 7 px for 90% (lfw128/train's own faces spread 3-4 px about the template)."""
    from photos import faces
    target = np.array([json.loads((ROOT / "photos" / "face_template.json").read_text())["points"][k]
                       for k in faces.POINTS])
    errors = []
    for name in annotated():
        img = rgb(PHOTOS / name)
        for face in detector(img):
            crop = faces.aligned_crop(img, face.landmarks, 128)
            again = min(detector(crop), key=lambda f: np.abs(f.landmarks - target).sum())
            errors.append(np.linalg.norm(again.landmarks - target, axis=1)[[0, 1, 3, 4]])
    errors = np.array(errors)
    assert len(errors) >= 16
    assert np.median(errors) < 3 and np.percentile(errors, 90) < 7, errors


@pytest.fixture(scope="module")
def enhanced(tmp_path_factory):
    """enhance.py --all_faces --upscale 4 over the annotated photos and dogs.jpg, all
    downscaled 4x (faces of 9-22 px), plus a non-image, a truncated JPEG, and a photo cut
    through a face."""
    import enhance
    src = tmp_path_factory.mktemp("photos")
    for name in [*annotated(), "dogs.jpg"]:
        Image.fromarray(downscaled(rgb(PHOTOS / name))).save(src / f"{Path(name).stem}.png")
    cut = downscaled(rgb(PHOTOS / "2008_001322.jpg"))[:, :106]   # its face spans x 86-108
    Image.fromarray(cut).save(src / "border.png")
    (src / "notes.jpg").write_text("not an image")
    jpeg = (PHOTOS / "2008_001009.jpg").read_bytes()
    (src / "truncated.jpg").write_bytes(jpeg[:len(jpeg) // 2])
    out = tmp_path_factory.mktemp("enhanced")
    unreadable = enhance.main(["--input", str(src), "--result_dir", str(out), "--upscale",
                               str(FACTOR), "--all_faces", "--weight_path", str(SHIPPED)])
    return src, out, unreadable


def result(enhanced, stem: str):
    src, out, _ = enhanced
    small = rgb(src / f"{stem}.png")
    plain = cv2.resize(small, (small.shape[1] * FACTOR, small.shape[0] * FACTOR),
                       interpolation=cv2.INTER_CUBIC)
    faces_json = json.loads((out / f"{stem}_faces.json").read_text())
    return small, plain, rgb(out / f"{stem}_enhanced.png"), faces_json["faces"]


def footprint(landmarks: np.ndarray) -> np.ndarray:
    """(left, top, right, bottom) of the aligned 128 px crop's square in the image."""
    from photos import faces
    inverse = cv2.invertAffineTransform(faces.alignment(landmarks, 128))
    corners = np.array([[-0.5, -0.5, 1], [127.5, -0.5, 1], [-0.5, 127.5, 1], [127.5, 127.5, 1]])
    xy = corners @ inverse.T
    return np.concatenate([xy.min(0), xy.max(0)])


def test_every_found_face_is_enhanced_over_its_crop(enhanced):
    """Every annotated face found (at least 16 of 18; 9-36 px) is enhanced by the 8x model
    alone (enhance.py's default), unwarped, and pasted over its aligned crop: the paste box
    holds the face's five landmarks with half an eye distance to spare and lies within the
    square that bounds the aligned crop (an input pixel beyond), clipped to the image; the output is
    4x the input. The input written is that n x n square (n from the face's native size to
    1.42 times it, turned 45 degrees) and the SR 4n px (the model's 8n, area-averaged). The
    figure is written."""
    from evaluation import metrics
    from photos import faces
    _, out, _ = enhanced
    pasted = 0
    for name, boxes in annotated().items():
        stem = Path(name).stem
        small, plain, img, found = result(enhanced, stem)
        assert img.shape == (small.shape[0] * FACTOR, small.shape[1] * FACTOR, 3)
        scale = FACTOR * small.shape[1] / rgb(PHOTOS / name).shape[1]   # annotation -> output
        for box in boxes:
            box = [v * scale for v in box]
            match = [r for r in found if overlap([v * FACTOR for v in r["box"]], box) >= 0.3]
            if not match:
                continue
            record = match[0]
            k, native = found.index(record), record["native_crop_size"]
            assert record["enhanced"] and record["route"] == "native", (stem, record)
            assert record["model"] == str(SHIPPED / "G_weight.ckpt")
            marks = faces.scaled(np.array([record["landmarks"][p] for p in faces.POINTS]), FACTOR)
            spare = 0.5 * np.linalg.norm(marks[1] - marks[0])
            x0, y0, x1, y1 = record["paste_box"]
            assert (x0 <= marks[:, 0].min() - spare and x1 >= marks[:, 0].max() + spare
                    and y0 <= marks[:, 1].min() - spare and y1 >= marks[:, 1].max() + spare)
            left, top, right, bottom = footprint(marks)
            slack = FACTOR + 1   # the block is cut at whole input pixels
            assert (x0 >= max(left - slack, 0) and y0 >= max(top - slack, 0)
                    and x1 <= min(right + slack, img.shape[1])
                    and y1 <= min(bottom + slack, img.shape[0])), \
                (stem, record["paste_box"], (left, top, right, bottom))
            assert np.abs(img[y0:y1, x0:x1].astype(int) - plain[y0:y1, x0:x1]).mean() > 1
            lr, sr = rgb(out / f"{stem}_face{k}_lr.png"), rgb(out / f"{stem}_face{k}_sr.png")
            assert native - 0.55 <= len(lr) <= 1.42 * native and lr.shape[2] == 3
            assert sr.shape == (4 * len(lr), 4 * len(lr), 3)
            # the SR sits on its input: averaged back to n px, it matches the input better
            # than the input moved by one pixel does
            back = cv2.resize(sr, lr.shape[1::-1], interpolation=cv2.INTER_AREA)
            inner = (slice(1, -1), slice(1, -1))
            assert metrics.psnr(back[inner], lr[inner]) > 1 + max(
                metrics.psnr(np.roll(back, 1, a)[inner], lr[inner]) for a in (0, 1)), (stem, k)
            pasted += 1
        assert (out / f"{stem}_compare.png").exists()
    assert pasted >= 16


def test_pixels_outside_the_masks_equal_the_plain_upscale(enhanced):
    """Only pixels inside a pasted face's mask differ from the bicubic upscale (computed here),
    photo by photo; the border photo too."""
    for stem in [Path(n).stem for n in annotated()] + ["border"]:
        _, plain, img, found = result(enhanced, stem)
        inside = np.zeros(img.shape[:2], bool)
        for r in found:
            x0, y0, x1, y1 = r["paste_box"]
            inside[y0:y1, x0:x1] = True
        changed = np.any(img != plain, axis=2)
        assert changed.any() and not (changed & ~inside).any(), stem


def test_photo_without_a_face_is_the_plain_upscale(enhanced):
    _, plain, img, found = result(enhanced, "dogs")
    assert found == [] and np.array_equal(img, plain)


def test_bad_files_are_named_and_skipped_and_a_face_off_the_border_is_enhanced(enhanced):
    src, out, unreadable = enhanced
    assert sorted(Path(p).name for p in unreadable) == ["notes.jpg", "truncated.jpg"]
    assert not list(out.glob("notes*")) and not list(out.glob("truncated*"))
    small, _, img, found = result(enhanced, "border")
    off = [r for r in found if r["box"][2] > small.shape[1] - 1]   # runs off the right edge
    assert off and all(r["enhanced"] for r in off)
    assert all(r["paste_box"][2] <= img.shape[1] for r in off)


def test_prepare_data_then_fine_tune_from_the_shipped_weights(tmp_path, capsys):
    """prepare_data.py keeps the faces of at least --min_size px, writes the manifest, and a
    rerun does nothing new; train.py --pretrained then fine-tunes on the crops for 20
    iterations with a fresh optimiser (global step 0 -> 20, weights moved a little),
    validating on one of them held out of training, and says what a checkpoint costs."""
    import prepare_data
    import train
    data_dir = tmp_path / "my_faces"
    summary = prepare_data.main(["--input", str(PHOTOS), "--output", str(data_dir),
                                 "--min_size", "64"])
    rows = list(csv.DictReader(open(data_dir / "manifest.csv")))
    written = [r for r in rows if r["status"] == "written"]
    assert summary["written"] == len(written) >= 6 and summary["too_small"] >= 1
    for r in written:
        assert float(r["native_size"]) >= 64
        assert rgb(data_dir / r["crop"]).shape == (128, 128, 3)
    assert any(r["source"] == "dogs.jpg" and r["status"] == "no face" for r in rows)
    assert prepare_data.main(["--input", str(PHOTOS), "--output", str(data_dir),
                              "--min_size", "64"]) == summary
    assert "5 photos already prepared, 0 to do" in capsys.readouterr().out
    train.main(["--train_path", str(data_dir), "--checkpoint_path",
                str(tmp_path), "--save_path", "run", "--batchSize", "2", "--val_size", "2",
                "--losses", "rgb", "--niter", "20", "--save_freq", "20", "--val_freq", "20",
                "--pretrained", str(SHIPPED)])
    out = capsys.readouterr().out   # a fine-tune validates on the user's faces, held out
    assert f"validating on 1 of the {len(written)} training faces, held out" in out
    assert "each model.ckpt-N holds G, D and the optimiser slots (" in out
    full = tf.train.load_checkpoint(str(tmp_path / "run" / "model.ckpt-20"))
    assert full.get_tensor("global_step") == 20
    before = tf.train.load_checkpoint(str(SHIPPED / "G_weight.ckpt"))
    after = tf.train.load_checkpoint(str(tmp_path / "run" / "model.ckpt-20"))
    old, new = before.get_tensor("generator/Conv1/w"), after.get_tensor("generator/Conv1/w")
    assert 0 < np.abs(new - old).max() and np.corrcoef(old.ravel(), new.ravel())[0, 1] > 0.99


def test_pretrained_of_another_model_names_the_variables(tmp_path):
    import train
    with pytest.raises(SystemExit) as stopped:
        train.main(["--model", "jeanet", "--train_path", str(PHOTOS), "--checkpoint_path",
                    str(tmp_path), "--save_path", "run", "--pretrained", str(SHIPPED)])
    message = str(stopped.value.code)
    assert message.startswith(f"error: --pretrained {SHIPPED}/G_weight.ckpt does not fit "
                              f"--model jeanet: generator/")
    assert "is missing" in message and "\n" not in message
    assert not (tmp_path / "run").exists()


def test_damaged_pretrained_weights_give_one_line(tmp_path):
    import train
    weights = Path(shutil.copytree(SHIPPED, tmp_path / "weights"))
    damaged = weights / "G_weight.ckpt.data-00000-of-00001"
    damaged.write_bytes(damaged.read_bytes()[:damaged.stat().st_size // 2])
    with pytest.raises(SystemExit) as stopped:
        train.main(["--train_path", str(PHOTOS), "--checkpoint_path", str(tmp_path),
                    "--save_path", "run", "--pretrained", str(weights)])
    message = str(stopped.value.code)
    assert message.startswith(f"error: {damaged} is missing or damaged")
    assert "pass --pretrained another checkpoint" in message
    assert "\n" not in message and not (tmp_path / "run").exists()


def test_each_face_goes_to_the_model_whose_input_holds_it(tmp_path):
    """With a 4x model beside the 8x one: faces of 16 px or less go to the 8x model unwarped
    (their native n x n crop), faces of 17-32 px to the 4x model (32x32 aligned input), faces
    of 33-40 px to the 4x model unwarped, larger ones to the 4x model when its input keeps
    them; the JSON names each face's weights and route. A --weight_path_4x that is no 4x
    EIPNet stops in one line before anything is written."""
    import enhance
    x4 = random_generator("eipnet", tmp_path / "x4", "--scale", "4")
    src = tmp_path / "photos"
    src.mkdir()
    for name in ("2008_001322.jpg", "2007_007763.jpg"):   # faces of 9-22 px at 4x down, 2x down
        for factor in (4, 2):
            img = rgb(PHOTOS / name)
            small = cv2.resize(img, (img.shape[1] // factor, img.shape[0] // factor),
                               interpolation=cv2.INTER_AREA)
            Image.fromarray(small).save(src / f"{Path(name).stem}_{factor}.png")
    out = tmp_path / "out"
    enhance.main(["--input", str(src), "--result_dir", str(out), "--upscale", "2",
                  "--weight_path", str(SHIPPED), "--weight_path_4x", str(x4), "--no_figures"])
    seen = collections.Counter()
    for path in sorted(out.glob("*_faces.json")):
        for k, face in enumerate(json.loads(path.read_text())["faces"]):
            n = face["native_crop_size"]
            if not face["enhanced"]:
                assert "32x32 input would lose detail" in face["reason"] or "not a face" in face["reason"]
                assert face["model"] is None
                continue
            size = 16 if face["model"] == str(SHIPPED / "G_weight.ckpt") else 32
            assert face["model"] == str((SHIPPED if size == 16 else x4) / "G_weight.ckpt")
            # the JSON rounds the size to 0.1 px; choose() saw it unrounded
            assert (n <= 16.05) if size == 16 else (n >= 15.95), (n, face["model"])
            low = rgb(out / path.name.replace("faces.json", f"face{k}_lr.png"))
            high = rgb(out / path.name.replace("faces.json", f"face{k}_sr.png"))
            if face["route"] == "native":
                assert (size == 16 or 31.95 <= n <= 40.05) and n - 0.55 <= len(low) <= 1.42 * n
                assert face["input_px"] == len(low) and high.shape == (2 * len(low),) * 2 + (3,)
            else:
                assert size == 32 and (n <= 32.05 or n >= 39.95) and low.shape == (32, 32, 3)
                assert face["corner"] is None and high.shape == (128, 128, 3)
            seen[size, face["route"]] += 1
    assert all(seen[key] >= 2 for key in ((16, "native"), (32, "aligned"), (32, "native"))), seen
    with pytest.raises(SystemExit) as stopped:
        enhance.main(["--input", str(src), "--result_dir", str(tmp_path / "refused"),
                      "--weight_path_4x", str(SHIPPED)])
    assert "--scale 4" in str(stopped.value.code) and "\n" not in str(stopped.value.code)
    assert not (tmp_path / "refused").exists()


def test_choose_sends_each_size_to_the_smallest_input_that_holds_it():
    """16 px and less: the 8x model's 16x16 input; over 16 up to 32: the 4x model's 32x32;
    larger: the largest input (whether it is enhanced is --min_kept_db's call)."""
    import enhance
    models = [enhance.Model(str(s), SimpleNamespace(lr_size=s)) for s in (16, 32)]
    chosen = {n: enhance.choose(n, models).weights for n in (9.5, 16.0, 16.01, 32.0, 32.5, 140)}
    assert chosen == {9.5: "16", 16.0: "16", 16.01: "32", 32.0: "32", 32.5: "32", 140: "32"}
    assert enhance.choose(40.0, models[:1]).weights == "16"   # no 4x model: the 8x one


def test_max_native_px_past_the_8x_output_size_is_refused(capsys):
    """--max_native_px is bounded by the 8x model's 128 px output: the error names the range."""
    from options.enhance_options import EnhanceOptions
    assert EnhanceOptions().parse(["--input", "x", "--max_native_px", "128"],
                                  verbose=False).max_native_px == 128
    for bad in ("129", "-1"):
        with pytest.raises(SystemExit):
            EnhanceOptions().parse(["--input", "x", "--max_native_px", bad], verbose=False)
        assert f"{bad} px is out of range: pass 0 (no face unwarped) to 128" in capsys.readouterr().err


@pytest.mark.parametrize("corner", [(16, 20), (-37, 90), (100, -50), (-10, -10), (170, 0)])
def test_a_block_off_the_photo_pastes_its_part_inside(val_paths, corner):
    """faces.paste_block and mask_gain.placed with the block partly (or wholly) off the canvas:
    the same as pasting onto the canvas grown on every side so far that
    nothing is clipped, and cutting the canvas back out; every other pixel keeps its value."""
    import data
    from photos import faces
    from tools import mask_gain
    canvas = data.read_image(val_paths[0])[:112]   # not square: rows and columns apart
    block = cv2.resize(data.read_image(val_paths[1]), (96, 96), interpolation=cv2.INTER_AREA)
    n = len(block)
    pad = 2 * n   # room for each corner tried
    grown = cv2.copyMakeBorder(canvas, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    inner = (slice(pad, pad + canvas.shape[0]), slice(pad, pad + canvas.shape[1]))
    x, y = corner
    want_paste, want_placed = grown.copy(), grown.copy()
    assert faces.paste_block(want_paste, block, (x + pad, y + pad)) == (x + pad, y + pad,
                                                                        x + pad + n, y + pad + n)
    want_placed[y + pad:y + pad + n, x + pad:x + pad + n] = block

    got = canvas.copy()
    box = faces.paste_block(got, block, corner)
    np.testing.assert_array_equal(got, want_paste[inner])
    np.testing.assert_array_equal(mask_gain.placed(canvas, block, corner), want_placed[inner])
    changed = np.argwhere((got != canvas).any(-1))
    if box is None:   # wholly off: nothing changes
        assert corner[0] >= canvas.shape[1] and not len(changed)
    else:
        assert box == (max(x, 0), max(y, 0), min(x + n, canvas.shape[1]),
                       min(y + n, canvas.shape[0]))
        assert len(changed) > 100
        assert (changed.min(0) >= (box[1], box[0])).all() and (changed.max(0) < (box[3], box[2])).all()


@pytest.mark.parametrize("other", ["srresnet", "prior_guided"])
def test_a_checkpoint_of_another_model_is_no_4x_eipnet(tmp_path, other):
    """SRResNet's and the prior-guided nets' checkpoints have no Step1_1 either: they must not
    pass for a 4x EIPNet (they did, and failed at restore after the result folder was made)."""
    import enhance
    folder = ROOT / "checkpoint" / f"{other}_lfw128"
    if not folder.is_dir():
        pytest.skip(f"{folder} does not ship in this checkout")
    assert enhance.x4_scale(str(folder / "G_weight.ckpt")) is None
    with pytest.raises(SystemExit) as stopped:
        enhance.main(["--input", str(PHOTOS), "--result_dir", str(tmp_path / "refused"),
                      "--weight_path_4x", str(folder)])
    assert "is not an EIPNet trained with --scale 4" in str(stopped.value.code)
    assert not (tmp_path / "refused").exists()


def test_quality_check_stops_on_missing_or_damaged_weights(tmp_path):
    """quality.py checks the weights as test.py and enhance.py do: one line naming the file."""
    from tools import quality
    with pytest.raises(SystemExit) as stopped:
        quality.main(["--weight_path", str(tmp_path / "none")])
    assert str(stopped.value.code).startswith("error:") and "none" in str(stopped.value.code)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for f in SHIPPED.glob("G_weight.ckpt.*"):
        (damaged / f.name).write_bytes(f.read_bytes()[:1000 if "data" in f.name else None])
    with pytest.raises(SystemExit) as stopped:
        quality.main(["--weight_path", str(damaged)])
    message = str(stopped.value.code)
    assert message.startswith("error:") and "G_weight.ckpt" in message
    assert "restore it from a copy" in message and "\n" not in message


def test_cpu_code_paths_move_no_paste_box_past_the_headroom():
    """tools/cpu_spread.py end to end: boxes, landmarks and aligned-route paste boxes under
    each AVX2 cap and with oneDNN off move less than 2 px (0 px measured on an AVX-512 EPYC,
    2026-12-04). The unwarped route's box bounds the aligned crop to within 0.75 input px
    whatever the landmarks, inside test_every_found_face_is_enhanced_over_its_crop's slack."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "tools/cpu_spread.py"], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {cells[0]: cells[1:] for cells in
            ([c.strip() for c in line.strip("|").split("|")] for line in done.stdout.splitlines()
             if line.startswith("| ") and not line.startswith("| setting"))}
    assert len(rows) == 7 and rows["default"] == ["0.00", "0.00", "0", "0"]
    for name, (box, marks, paste, missing) in rows.items():
        assert float(paste) < 2 and missing == "0", (name, rows[name])


def test_a_perfect_model_through_the_paste_beats_bicubic_by_far():
    """quality.py's bound: the original's own pixels, pasted where and as enhance.py pastes an
    SR (its aligned crop, or its unwarped square), are far closer to the original than the
    plain 4x upscale on each face of a real photo, and leave the rest of the upscale as it is."""
    import data
    from photos import faces
    import enhance
    from tools import detectors, quality
    from evaluation import metrics
    name = "2008_001009.jpg"
    photos = SHARED / "data" / "photos"
    original, low, base = quality.downscaled(data.read_image(str(photos / name)), 4)
    found = [faces.in_photo(face, 4).landmarks for face in faces.Detector()(base)]
    boxes = detectors.read_truth(str(photos / "faces.csv"))[name]
    assert len(found) == len(boxes) == 2
    squares = [faces.native_crop(low, marks) for marks in found]   # (block, corner) each
    for route in ("aligned", "native"):   # enhance.py's records, as its JSON has them
        records = [{"enhanced": True, "route": route,
                    "landmarks": dict(zip(faces.POINTS, marks.tolist())),
                    "input_px": len(block), "corner": corner}
                   for marks, (block, corner) in zip(found, squares)]
        perfect = quality.perfect_paste(base, original, records, 4)
        for box in boxes:
            gain = (metrics.psnr(quality.region(perfect, box), quality.region(original, box))
                    - metrics.psnr(quality.region(base, box), quality.region(original, box)))
            assert gain > 3.0, (route, gain)
        inside = np.zeros(base.shape[:2], bool)   # the faces' paste regions only
        for record, marks in zip(records, found):
            x0, y0, x1, y1 = (faces.mask_box(faces.scaled(marks, 4), 128, base.shape)
                              if route == "aligned" else
                              faces.block_box(enhance.scaled_corner(record["corner"], 4),
                                              4 * record["input_px"], base.shape))
            inside[y0:y1, x0:x1] = True
        changed = np.any(perfect != base, axis=2)
        assert changed.any() and not (changed & ~inside).any()


def test_gain_by_size_scores_the_model_against_bicubic(tmp_path, capsys):
    """tools/gain_by_size.py on real val faces: an untrained 4x generator is far behind bicubic
    at every face size (a tool that compared bicubic with itself would print 0), one row per
    size; a missing checkpoint stops in one line."""
    from tools import gain_by_size
    weights = random_generator("eipnet", tmp_path / "x4", "--scale", "4")
    result = gain_by_size.main(["--weight_path", str(weights), "--val",
                                str(SHARED / "data" / "lfw128" / "val"), "--faces", "3",
                                "--sizes", "12,32"])
    assert sorted(result) == [12, 32] and all(len(g) == 3 for g in result.values())
    assert all((g < -3).all() for g in result.values())
    assert "| 12 | 48 (48) |" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="error: .*none"):
        gain_by_size.main(["--weight_path", str(tmp_path / "none")])


def test_gain_map_splits_the_crop_into_face_and_the_rest(tmp_path, capsys):
    """tools/gain_map.py on real val faces: the face region is the middle of the crop (a
    quarter to three quarters of it); the shipped 8x model beats bicubic on the face and on the
    rest of the crop on clean faces, an untrained generator loses on both."""
    from tools import gain_map
    face = gain_map.face_region()
    assert 0.25 < face.mean() < 0.75 and face[64, 64] and not face[0, 0]
    val = str(SHARED / "data" / "lfw128" / "val")
    shipped = gain_map.main(["--weight_path", str(SHIPPED), "--val", val, "--faces", "4",
                             "--degradation", "bilinear_chain"])
    assert all(g > 0.5 for g in shipped.values()), shipped
    untrained = gain_map.main(["--weight_path", str(random_generator("eipnet", tmp_path / "g")),
                               "--val", val, "--faces", "4"])
    assert all(g < -3 for g in untrained.values()), untrained
    assert "| rest of the crop |" in capsys.readouterr().out


def test_mask_gain_splits_the_gain_inside_the_paste_mask(capsys):
    """tools/mask_gain.py on the shared photos, 4x area, with the shipped 8x model alone: one
    row per real face found (17), each of them (10-36 px) unwarped, so the bicubic of its input
    is the photo's own bicubic but at the block's edges (within 0.15 dB); the
    masked PSNR is the plain PSNR under a full mask and ignores what lies outside it; the paste
    keeps the SR (within 0.2 dB), which is no copy of the bicubic."""
    import data
    from evaluation import metrics
    from tools import mask_gain
    truth = data.read_image(str(sorted((SHARED / "data" / "lfw128" / "val").iterdir())[0]))
    noisy = np.clip(truth + np.random.default_rng(0).normal(0, 5, truth.shape), 0, 255)
    ones = np.ones(truth.shape[:2], np.float32)
    assert mask_gain.masked_psnr(noisy, truth, ones) == pytest.approx(metrics.psnr(noisy, truth),
                                                                      abs=1e-6)
    inside = ones.copy()
    inside[:, 64:] = 0
    spoiled = np.concatenate([noisy[:, :64], 255 - truth[:, 64:]], 1)
    assert mask_gain.masked_psnr(spoiled, truth, inside) == pytest.approx(
        mask_gain.masked_psnr(noisy[:, :64], truth[:, :64], ones[:, :64]))
    rows = mask_gain.main(["--photos", str(PHOTOS), "--weight_path", str(SHIPPED),
                           "--weight_path_4x", "none"])
    assert len(rows) == 17 and {(r["model"], r["route"]) for r in rows} == {(16, "native")}
    assert max(r["crop"] for r in rows) > 34 and all(r["whole"] for r in rows)
    assert all(abs(r["input bicubic"] - r["photo bicubic"]) < 0.15 for r in rows)
    assert all(abs(r["pasted"] - r["SR"]) < 0.2 for r in rows)
    assert all(abs(r["SR"] - r["photo bicubic"]) > 0.005 for r in rows)
    assert "faces whose input holds all of them" in capsys.readouterr().out
