"""test.py end to end on a few real lfw128/val faces copied to a temporary folder, with the
authors' checkpoint layout (official fixture, 1x1 tail) and one of ours (3x3 tail)."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import checkpoints
import data
from evaluation import metrics
import model
import test as test_script
from conftest import LFW, OFFICIAL, ROOT, copy_faces, random_generator
from options.test_options import TestOptions
from tf1 import tf

# Jon_Stewart_0001: no face found by HOG, so the FR metrics and algorithm TAR skip it
FACES = ["Abraham_Foxman_0001", "Alec_Baldwin_0001", "Alec_Baldwin_0002", "Jon_Stewart_0001"]
ALL_COLUMNS = ["file", "input", "face_box"] + [
    f"{m}_{k}" for m in ("psnr", "fr_psnr", "ssim", "fr_ssim", "vif", "dist_algorithm",
                         "dist_network", "brisque") for k in ("sr", "bicubic")] + ["brisque_hr"]


def val_path(name: str) -> Path:
    return LFW / "val" / f"{name}.jpg"


def read_csv(folder: Path) -> list[dict]:
    with open(folder / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def run(tmp: Path, test_path: Path, weights, *args: str) -> tuple[dict, Path]:
    out = tmp / "result"
    summary = test_script.main(["--weight_path", str(weights), "--test_path", str(test_path),
                                "--result_dir", str(out), *args])
    return summary, out


def lr_of(name: str) -> np.ndarray:
    return data.degrade(data.read_image(str(val_path(name))))[-1]


@pytest.fixture(scope="module")
def faces_dir(tmp_path_factory) -> Path:
    return copy_faces([val_path(n) for n in FACES], tmp_path_factory.mktemp("faces"))


@pytest.fixture(scope="module")
def our_weights(tmp_path_factory) -> Path:
    return random_generator("eipnet", tmp_path_factory.mktemp("ours"))


@pytest.fixture(scope="module")
def official_run(faces_dir, tmp_path_factory):
    """Every metric and figure, batches of 3 (so a full and a partial batch)."""
    return run(tmp_path_factory.mktemp("official"), faces_dir, OFFICIAL, "--batchSize", "3")


def test_official_files_and_csv(official_run):
    summary, out = official_run
    for name in FACES:
        for tag in ("SR", "bicubic", "edge32", "edge64", "edge128", "compare"):
            assert (out / f"{name}_{tag}.png").is_file(), (name, tag)
        assert png(out / f"{name}_SR.png").shape == (128, 128, 3)
        assert png(out / f"{name}_edge32.png").shape == (32, 32)
    rows = read_csv(out)
    assert list(rows[0]) == ALL_COLUMNS
    assert [r["file"] for r in rows] == [f"{n}.jpg" for n in FACES]
    faceless = rows[FACES.index("Jon_Stewart_0001")]
    assert faceless["face_box"] == faceless["fr_psnr_sr"] == faceless["dist_algorithm_sr"] == ""
    assert faceless["psnr_sr"] != "" and faceless["dist_network_sr"] != ""
    assert summary["complexity"]["params"] == 11_912_582   # 1x1 tail read from the checkpoint
    assert summary["complexity"]["gmacs"] == pytest.approx(10.078, abs=1e-3)
    assert json.loads((out / "summary.json").read_text()) == summary


def test_official_metrics_recomputed_from_files(official_run):
    _, out = official_run
    for row in read_csv(out):
        hr = data.read_image(str(LFW / "val" / row["file"]))
        sr, bic = png(out / row["file"].replace(".jpg", "_SR.png")), png(
            out / row["file"].replace(".jpg", "_bicubic.png"))
        lr = data.degrade(hr)[-1].astype(np.float32)
        want_bic = np.clip(np.rint(cv2.resize(lr, (128, 128), interpolation=cv2.INTER_CUBIC)),
                           0, 255)
        assert np.array_equal(bic, want_bic)
        assert float(row["psnr_sr"]) == pytest.approx(metrics.psnr(sr, hr), abs=1e-9)
        assert float(row["ssim_bicubic"]) == pytest.approx(metrics.ssim(bic, hr), abs=1e-9)
        assert float(row["vif_bicubic"]) == pytest.approx(metrics.vif(bic, hr), abs=1e-9)
        assert 20 < float(row["psnr_bicubic"]) < 25
        box = metrics.face_box(hr)
        assert row["face_box"] == ("" if box is None else " ".join(map(str, box)))
        if box:
            assert float(row["fr_psnr_bicubic"]) == pytest.approx(
                metrics.fr_psnr(bic, hr, box), abs=1e-9)
        assert float(row["brisque_hr"]) == pytest.approx(metrics.brisque(hr), abs=1e-9)


def test_official_summary_matches_csv(official_run, capsys):
    summary, out = official_run
    rows = read_csv(out)
    values = lambda key: [float(r[key]) for r in rows if r[key] != ""]
    means = summary["metrics"]
    for m in ("psnr", "fr_psnr", "ssim", "fr_ssim", "vif", "brisque"):
        for k in ("sr", "bicubic"):
            assert means[m][k] == pytest.approx(np.mean(values(f"{m}_{k}")), abs=1e-9), (m, k)
    assert means["brisque"]["hr"] == pytest.approx(np.mean(values("brisque_hr")))
    assert means["psnr"]["n"] == 4 and means["fr_psnr"]["n"] == means["fr_ssim"]["n"] == 3
    assert summary["images"] == {"total": 4, "scored": 4, "lr_only": 0, "skipped": [],
                                 "no_face": 1}
    defaults = TestOptions().parse([], verbose=False)
    for kind, thresholds in (("algorithm", defaults.tar_algorithm),
                             ("network", defaults.tar_network)):
        assert [t["threshold"] for t in summary["tar"][kind]] == thresholds
        for t in summary["tar"][kind]:
            for k in ("sr", "bicubic"):
                accepted = np.sum(np.array(values(f"dist_{kind}_{k}")) < t["threshold"])
                assert t[k] == accepted / 4      # Eq 12: N_ALL counts the faceless image
                assert t[f"{k}_detected_only"] == accepted / t["n_detected"]
            assert (t["n_all"], t["n_detected"]) == (4, 3 if kind == "algorithm" else 4)
    md = (out / "summary.md").read_text()
    assert "| TAR algorithm d=0.6, detected faces only |" in md
    assert "| images | 4 | 4 | 4 | 4 | 3 | 3 |" in md
    for heading in ("Table 6", "Table 7", "Table 8", "Table 9"):
        assert heading in md
    assert f"| EIPNet | {means['psnr']['sr']:.2f} | {means['fr_psnr']['sr']:.2f} |" in md
    assert f"| Bicubic | {means['brisque']['bicubic']:.2f} |" in md
    assert "| 11.91 | 10.08 | – | – | fp32 |" in md


def test_tar_rows_divide_by_all_scored_images():
    """Eq 12's N_ALL: every HR image, a face dlib missed counting as not accepted; LR-only
    inputs are not scored. The detected-only share is the extra column."""
    rows = [{"input": "hr", "dist_algorithm_sr": 0.3, "dist_algorithm_bicubic": 0.7},
            {"input": "hr", "dist_algorithm_sr": 0.55, "dist_algorithm_bicubic": 0.4},
            {"input": "hr", "dist_algorithm_sr": None, "dist_algorithm_bicubic": None},
            {"input": "lr"}]
    t05, t06 = test_script.tar_rows(rows, "algorithm", [0.5, 0.6])
    assert (t05["n_all"], t05["n_detected"]) == (3, 2)
    assert (t05["sr"], t05["bicubic"]) == (1 / 3, 1 / 3)
    assert (t06["sr"], t06["sr_detected_only"], t06["bicubic_detected_only"]) == (2 / 3, 1, 0.5)
    md = test_script.markdown({"model": "eipnet", "weights": "w", "y_channel": False,
                               "images": {"total": 4, "scored": 3, "lr_only": 1, "skipped": [],
                                          "no_face": 1},
                               "metrics": {}, "tar": {"algorithm": [t05, t06], "network": []},
                               "complexity": {"params": 1e6, "gmacs": 1.0, "fps_batch1": None,
                                              "fps_batch16": None, "precision": "fp32"}})
    assert "| TAR algorithm d=0.6 | TAR algorithm d=0.5, detected faces only |" in md
    assert "| EIPNet | 33.3 | 66.7 | 50.0 | 100.0 |" in md and "| images | 3 | 3 | 2 | 2 |" in md


def test_our_checkpoint_y_channel_selected_metrics(our_weights, faces_dir, tmp_path):
    prefix = our_weights / checkpoints.G_WEIGHT        # a prefix works as well as its folder
    summary, out = run(tmp_path, faces_dir, prefix, "--metrics", "psnr,ssim", "--y_channel",
                       "--no_figures")
    rows = read_csv(out)
    assert list(rows[0]) == ["file", "input", "psnr_sr", "psnr_bicubic", "ssim_sr",
                             "ssim_bicubic"]
    assert not list(out.glob("*_compare.png")) and len(list(out.glob("*_SR.png"))) == 4
    for row in rows:
        hr = data.read_image(str(LFW / "val" / row["file"]))
        sr = png(out / row["file"].replace(".jpg", "_SR.png"))
        assert float(row["psnr_sr"]) == pytest.approx(metrics.psnr(sr, hr, y_channel=True))
        assert float(row["ssim_sr"]) == pytest.approx(metrics.ssim(sr, hr, y_channel=True))
    assert summary["complexity"]["params"] == 11_915_654    # 3x3 tail read from the checkpoint
    assert summary["tar"] == {} and summary["images"]["no_face"] is None
    assert "(Y channel)" in (out / "summary.md").read_text()


def test_lr_inputs(our_weights, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in FACES[:2]:
        Image.fromarray(lr_of(name)).save(folder / f"{name}_lr.png")
    copy_faces([val_path(FACES[2])], folder)
    summary, out = run(tmp_path / "auto", folder, our_weights, "--metrics", "psnr")
    rows = {r["file"]: r for r in read_csv(out)}
    assert rows[f"{FACES[0]}_lr.png"]["input"] == "lr" and rows[f"{FACES[0]}_lr.png"]["psnr_sr"] == ""
    assert rows[f"{FACES[2]}.jpg"]["input"] == "hr" and rows[f"{FACES[2]}.jpg"]["psnr_sr"] != ""
    assert summary["images"]["lr_only"] == 2 and summary["metrics"]["psnr"]["n"] == 1
    assert png(out / f"{FACES[0]}_lr_SR.png").shape == (128, 128, 3)
    assert (out / f"{FACES[0]}_lr_compare.png").is_file()

    summary, out = run(tmp_path / "lr", folder, our_weights, "--input", "lr")
    assert [r["input"] for r in read_csv(out)] == ["lr", "lr"]
    assert summary["images"]["skipped"] == [f"{FACES[2]}.jpg"]   # 128x128 is no LR input
    assert summary["metrics"] == {} and (out / f"{FACES[1]}_lr_SR.png").is_file()


def test_corrupt_and_grayscale_files(our_weights, tmp_path, capsys):
    folder = copy_faces([val_path(FACES[0])], tmp_path / "faces")
    Image.open(val_path(FACES[1])).convert("L").save(folder / "gray.png")
    (folder / "broken.jpg").write_bytes(b"this is not a jpeg")
    (folder / "truncated.jpg").write_bytes(val_path(FACES[2]).read_bytes()[:2000])
    (folder / "notes.txt").write_text("not an image, not listed")
    summary, out = run(tmp_path, folder, our_weights, "--metrics", "psnr,fr", "--no_figures")
    printed = capsys.readouterr()
    for bad in ("broken.jpg", "truncated.jpg"):
        assert bad in printed.out + printed.err
    assert summary["images"]["skipped"] == ["broken.jpg", "truncated.jpg"]
    rows = {r["file"]: r for r in read_csv(out)}
    assert set(rows) == {f"{FACES[0]}.jpg", "gray.png"}
    gray_hr = data.read_image(str(folder / "gray.png"))
    assert gray_hr.shape == (128, 128, 3)
    assert float(rows["gray.png"]["psnr_bicubic"]) == pytest.approx(
        metrics.psnr(png(out / "gray_bicubic.png"), gray_hr))
    assert rows["gray.png"]["face_box"] != ""   # the face is still found in gray


def test_clear_errors(our_weights, faces_dir, tmp_path, capsys):
    missing = tmp_path / "no_such_weights"
    with pytest.raises(SystemExit, match="no_such_weights.*--weight_path"):
        run(tmp_path, faces_dir, missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit, match="no images.*empty"):
        run(tmp_path, empty, our_weights)
    with pytest.raises(SystemExit, match="--model jeanet: it was trained as another model"):
        run(tmp_path, faces_dir, our_weights, "--model", "jeanet")
    assert "note:" not in capsys.readouterr().out   # no architecture notes for a wrong model
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.jpg").write_bytes(b"garbage")
    with pytest.raises(SystemExit, match="no readable image"):
        run(tmp_path, broken, our_weights, "--metrics", "psnr")


def test_architecture_read_from_the_checkpoint(faces_dir, tmp_path, capsys):
    """An ablation checkpoint (no 64 px edge block) runs without flags; a disagreeing flag is
    overridden with a note, so the graph always matches the weights."""
    weights = random_generator("eipnet", tmp_path / "ablation", "--edge_blocks", "1,0,1")
    summary, out = run(tmp_path, faces_dir, weights, "--metrics", "psnr", "--no_figures",
                       "--tail", "released")
    printed = capsys.readouterr().out
    assert "trained with --edge_blocks 1,0,1: using that, not --edge_blocks 1,1,1" in printed
    assert "trained with --tail paper: using that, not --tail released" in printed
    name = FACES[0]
    assert (out / f"{name}_edge32.png").is_file() and (out / f"{name}_edge128.png").is_file()
    assert not (out / f"{name}_edge64.png").exists()
    saved = tf.train.list_variables(str(weights / checkpoints.G_WEIGHT))
    assert summary["complexity"]["params"] == sum(np.prod(shape) for _, shape in saved)
    assert summary["metrics"]["psnr"]["n"] == len(FACES)


def test_scale_read_from_a_4x_checkpoint(faces_dir, tmp_path, capsys):
    """A --scale 4 checkpoint runs with no flag: HR faces are degraded to 32x32 (the bilinear
    chain's 32 px level), a 32x32 file is LR, a 16x16 one is too small, and the summary says
    4x with the 4x graph's size."""
    weights = random_generator("eipnet", tmp_path / "x4", "--scale", "4")
    faces = copy_faces([val_path(n) for n in FACES[:2]], tmp_path / "faces")
    hr = data.read_image(str(val_path(FACES[0])))
    Image.fromarray(data.degrade(hr)[2]).save(faces / "lr32.png")
    Image.fromarray(data.degrade(hr)[3]).save(faces / "lr16.png")
    summary, out = run(tmp_path, faces, weights, "--metrics", "psnr", "--workers", "0")
    assert "skipping" in capsys.readouterr().out   # lr16.png: neither LR nor HR at 4x
    assert summary["scale"] == 4 and summary["images"]["lr_only"] == 1
    assert summary["images"]["skipped"] == ["lr16.png"]
    assert summary["complexity"]["params"] == 3_911_557
    assert summary["complexity"]["gmacs"] == pytest.approx(7.179, abs=1e-3)
    rows = {r["file"]: r for r in read_csv(out)}
    for name in FACES[:2]:   # bicubic from the 32 px level, as recomputed here
        face = data.read_image(str(val_path(name)))
        up = cv2.resize(data.degrade(face)[2].astype(np.float32), (128, 128),
                        interpolation=cv2.INTER_CUBIC)
        assert float(rows[f"{name}.jpg"]["psnr_bicubic"]) == pytest.approx(
            metrics.psnr(face, metrics.to_uint8(up)), abs=1e-3)
        assert png(out / f"{name}_SR.png").shape == (128, 128, 3)
        assert (out / f"{name}_edge64.png").is_file() and not (out / f"{name}_edge32.png").exists()
    assert png(out / "lr32_SR.png").shape == (128, 128, 3)


def test_fps_at_batch_1_and_16():
    class SlowGenerator:   # 0.05 s per batch, so the timing loop sleeps instead of spinning
        build, batches = staticmethod(lambda lr: model.generator(lr, "released")), []
        lr_size = 16

        def __call__(self, lr):
            self.batches.append(lr.shape)
            time.sleep(0.05)

    opt = TestOptions().parse(["--fps", "--precision", "bf16"], verbose=False)
    info = test_script.measure_complexity(opt, SlowGenerator())
    assert {s[0] for s in SlowGenerator.batches} == {1, 16}
    assert all(s[1:] == (16, 16, 3) for s in SlowGenerator.batches)
    assert info["fps_batch1"] == pytest.approx(20, rel=0.3)
    assert info["fps_batch16"] == pytest.approx(16 * 20, rel=0.3)
    assert info["params"] == 11_912_582 and info["precision"] == opt.precision
    md = test_script.markdown({"model": "eipnet", "weights": "w", "y_channel": False,
                               "metrics": {}, "tar": {}, "complexity": info,
                               "images": {"total": 0, "scored": 0, "lr_only": 0, "skipped": [],
                                          "no_face": None}})
    assert f"| {info['fps_batch1']:.1f} | {info['fps_batch16']:.1f} | {opt.precision} |" in md


@pytest.mark.parametrize("part", ["data", "index"])
def test_damaged_weights_give_one_line(our_weights, faces_dir, tmp_path, part):
    """Item 4: a data file cut in half, or an index of random bytes, is named in a one-line
    error before anything is written."""
    weights = Path(shutil.copytree(our_weights, tmp_path / "weights"))
    if part == "data":
        damaged = weights / f"{checkpoints.G_WEIGHT}.data-00000-of-00001"
        damaged.write_bytes(damaged.read_bytes()[:damaged.stat().st_size // 2])
    else:
        damaged = weights / f"{checkpoints.G_WEIGHT}.index"
        damaged.write_bytes(np.random.default_rng(0).bytes(damaged.stat().st_size))
    with pytest.raises(SystemExit) as stopped:
        run(tmp_path, faces_dir, weights)
    message = str(stopped.value.code)
    assert message.startswith(f"error: {damaged} is missing or damaged") and "\n" not in message
    assert not (tmp_path / "result").exists()


def test_result_dir_that_is_a_file_stops_before_the_model(our_weights, faces_dir, tmp_path,
                                                         monkeypatch):
    """Item 5: --result_dir naming a file stops with one line before any model is loaded,
    and the file is left as it was."""
    def no_model(*args):
        raise AssertionError("the model was loaded before the output folder was checked")
    monkeypatch.setattr(test_script, "Generator", no_model)
    (tmp_path / "result").write_text("my notes")
    expected = (f"error: cannot write to --result_dir '{tmp_path}/result' (File exists): pass "
                "a folder you can write to")
    with pytest.raises(SystemExit, match=re.escape(expected)):
        run(tmp_path, faces_dir, our_weights)
    assert (tmp_path / "result").read_text() == "my notes"


def test_colliding_stems_keep_their_extension(our_weights, tmp_path):
    """Item 6: face.jpg and face.png (two different faces) get outputs of their own, each the
    SR and bicubic of its own face, and scores that match them."""
    folder = tmp_path / "faces"
    folder.mkdir()
    (folder / "face.jpg").write_bytes(val_path(FACES[0]).read_bytes())
    Image.open(val_path(FACES[1])).save(folder / "face.png")
    summary, out = run(tmp_path, folder, our_weights, "--metrics", "psnr", "--no_figures")
    assert not list(out.glob("face_*.png"))
    rows = {r["file"]: r for r in read_csv(out)}
    assert set(rows) == {"face.jpg", "face.png"}
    for name, face in (("face.jpg", FACES[0]), ("face.png", FACES[1])):
        hr = data.read_image(str(val_path(face)))
        bic = cv2.resize(lr_of(face).astype(np.float32), (128, 128),
                         interpolation=cv2.INTER_CUBIC)
        assert np.array_equal(png(out / f"{name}_bicubic.png"), np.clip(np.rint(bic), 0, 255))
        assert float(rows[name]["psnr_sr"]) == pytest.approx(
            metrics.psnr(png(out / f"{name}_SR.png"), hr), abs=1e-9)
    assert summary["metrics"]["psnr"]["n"] == 2
    assert test_script.output_stems(["a.jpg", "a.png", "a.jpg.png", "b.png"]) == {
        "a.jpg": "a.jpg", "a.png": "a.png", "a.jpg.png": "a.jpg.png", "b.png": "b"}


def test_a_preset_crop_too_small_for_hr_and_an_lr_face_as_hr_are_skipped(our_weights, tmp_path,
                                                                        capsys):
    """A 128x128 face is an HR reference as it is, but --dataset vggface2's 0.7 centre crop of
    it is 90 px: upscaled, a blurred reference, so it is skipped naming the crop. A 16x16 face
    with --input hr is skipped naming --input auto; --batchSize 0 is refused."""
    folder = copy_faces([val_path(FACES[0])], tmp_path / "faces")
    with pytest.raises(SystemExit, match="no readable image"):   # its one face skipped
        run(tmp_path / "vgg", folder, our_weights, "--metrics", "psnr", "--no_figures",
            "--dataset", "vggface2")
    printed = capsys.readouterr()
    assert (f"{FACES[0]}.jpg' is 128x128 (its --dataset vggface2 crop 90x90), smaller than the "
            f"128x128 output") in printed.out + printed.err
    small = cv2.resize(data.read_image(str(val_path(FACES[0]))), (16, 16),
                       interpolation=cv2.INTER_AREA)
    Image.fromarray(small).save(folder / "lr16.png")
    summary, _ = run(tmp_path / "hr", folder, our_weights, "--metrics", "psnr", "--no_figures",
                     "--input", "hr")
    printed = capsys.readouterr()
    assert "lr16.png' is 16x16, an LR face, not an HR reference: pass --input auto" in (
        printed.out + printed.err)
    assert summary["images"]["skipped"] == ["lr16.png"]
    with pytest.raises(SystemExit):
        run(tmp_path / "zero", folder, our_weights, "--batchSize", "0")
    assert "argument --batchSize: 0: pass 1 or more" in capsys.readouterr().err


def test_image_too_small_for_hr_is_skipped(our_weights, tmp_path, capsys):
    """Item 7: an 8x8 face is neither LR (16x16) nor an HR reference: it is skipped with a
    note and stays out of the means, which are those of the real face alone."""
    folder = copy_faces([val_path(FACES[0])], tmp_path / "faces")
    small = cv2.resize(data.read_image(str(val_path(FACES[1]))), (8, 8),
                       interpolation=cv2.INTER_AREA)
    Image.fromarray(small).save(folder / "small.png")
    summary, out = run(tmp_path, folder, our_weights, "--metrics", "psnr", "--no_figures")
    printed = capsys.readouterr()
    assert "small.png' is 8x8, smaller than the 128x128 output" in printed.out + printed.err
    assert summary["images"]["skipped"] == ["small.png"]
    assert summary["metrics"]["psnr"]["n"] == 1
    hr = data.read_image(str(val_path(FACES[0])))
    assert summary["metrics"]["psnr"]["sr"] == pytest.approx(
        metrics.psnr(png(out / f"{FACES[0]}_SR.png"), hr), abs=1e-9)


def test_each_model_finds_its_shipped_weights(faces_dir, tmp_path, monkeypatch):
    """Without --weight_path, test.py, enhance.py and export.py load checkpoint/<model>_lfw128:
    from the working folder where it is there (the README runs them from the repository root),
    else the repository's, so they run from any folder (so does test.py's default
    --test_path, the sample faces); a --weight_path given is kept. Every such folder in this
    checkout restores with its --model and no weight flag, and the summary names the weights."""
    from networks import generators
    from options.enhance_options import EnhanceOptions
    from options.export_options import ExportOptions
    for where, prefix in ((ROOT, ""), (tmp_path, str(ROOT))):
        monkeypatch.chdir(where)
        for name in generators.GENERATORS:
            for options, extra in ((TestOptions, []), (EnhanceOptions, ["--input", "x"]),
                                   (ExportOptions, [])):
                opt = options().parse(["--model", name, *extra], verbose=False)
                assert opt.weight_path == os.path.join(prefix, "checkpoint", f"{name}_lfw128")
        assert TestOptions().parse([], verbose=False).test_path == os.path.join(prefix, "datasets",
                                                                                "test")
        assert TestOptions().parse(["--weight_path", "w"], verbose=False).weight_path == "w"
    monkeypatch.chdir(ROOT)
    shipped = [n for n in generators.GENERATORS if (ROOT / "checkpoint" / f"{n}_lfw128").is_dir()]
    assert "eipnet" in shipped
    for name in shipped:
        out = tmp_path / name
        summary = test_script.main(["--model", name, "--test_path", str(faces_dir),
                                    "--result_dir", str(out), "--metrics", "psnr",
                                    "--no_figures", "--workers", "0"])
        assert summary["weights"] == os.path.join("checkpoint", f"{name}_lfw128")
        assert summary["metrics"]["psnr"]["n"] == len(FACES)


def test_a_model_without_shipped_weights_stops_in_one_line(faces_dir, tmp_path, monkeypatch):
    """--model M with no --weight_path where neither the working folder nor the repository
    holds checkpoint/M_lfw128 (every model ships in this checkout, so a repository without its
    checkpoint/ stands in): one line naming the folder, before anything is written."""
    from networks import generators
    from options import base_options
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(base_options, "ROOT", str(tmp_path))
    for name in generators.GENERATORS:
        with pytest.raises(SystemExit) as stopped:
            test_script.main(["--model", name, "--test_path", str(faces_dir), "--result_dir",
                              str(tmp_path / name)])
        message = str(stopped.value.code)
        assert f"no checkpoint at 'checkpoint/{name}_lfw128'" in message and "\n" not in message
        assert not (tmp_path / name).exists()
