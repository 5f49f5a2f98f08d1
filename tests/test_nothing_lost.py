"""Nothing lost, round 2 (issue 23): enhance.py, prepare_data.py, export.py, a failed resume
and test.py under big photos, shared folders and reruns, each case as a user runs it, on real
photos (../shared/data/photos) and faces (lfw128)."""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, SHARED, train_args
import enhance
import export
import prepare_data
import result_folders
import train

PHOTOS = SHARED / "data" / "photos"
SHIPPED = ROOT / "checkpoint" / "eipnet_lfw128"
GROUP = PHOTOS / "2007_007763.jpg"   # nine faces of 44-58 px crops


def small_photo(folder: Path, name: str) -> Path:
    """The group photo halved (faces of about 25 px): quick to enhance."""
    folder.mkdir(parents=True, exist_ok=True)
    img = Image.open(GROUP).convert("RGB")
    img.resize((img.width // 2, img.height // 2), Image.BICUBIC).save(folder / name)
    return folder / name


def run_enhance(src: Path, out: Path, *extra: str) -> list[str]:
    return enhance.main(["--input", str(src), "--result_dir", str(out), "--upscale", "2",
                         "--weight_path", str(SHIPPED), "--no_figures", *extra])


PASTE_RSS = """
import resource, sys
import numpy as np
sys.path.insert(0, {root!r})
import data
from photos import faces
canvas = np.zeros((6000, 8000, 3), np.uint8) + 90
crop = data.read_image({face!r})
landmarks = faces.template(128) * 3 + 2000   # a 384 px face
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
faces.paste(canvas, crop, landmarks)
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(grown // 1024, (canvas != 90).any(-1).sum())
"""


def test_a_face_pasted_into_a_big_photo_costs_only_its_region(val_paths):
    """Bug 1: pasting one face into a 48 MP canvas grows the peak memory by its region's
    buffers (a few MB), not by whole-image float32 arrays (about 2.5 GB)."""
    code = PASTE_RSS.format(root=str(ROOT), face=val_paths[0])
    grown_mb, changed = subprocess.run([sys.executable, "-c", code], check=True, text=True,
                                       capture_output=True).stdout.split()
    assert int(grown_mb) < 100, grown_mb
    assert int(changed) > 384 * 384 // 4   # the face's crop was pasted


def test_two_photos_with_one_stem_keep_both_results(tmp_path):
    """Bug 2: p.jpg and p.png give p.jpg_* and p.png_*, as test.py names them."""
    src = tmp_path / "in"
    small_photo(src, "p.jpg")
    small_photo(src, "p.png")
    assert run_enhance(src, tmp_path / "out") == []
    for name in ("p.jpg", "p.png"):
        assert (tmp_path / "out" / f"{name}_enhanced.png").exists()
        assert (tmp_path / "out" / f"{name}_faces.json").exists()


def test_an_earlier_figure_left_in_place_is_named_and_skipped_files_are_summed_up(tmp_path,
                                                                                 capsys):
    """A rerun into the same folder that writes no figure (--no_figures) names the earlier
    run's p_compare.png it leaves there, which no longer shows this run's faces; the photos
    that could not be read are listed again at the end, not only among the progress lines."""
    src, out = tmp_path / "in", tmp_path / "out"
    small_photo(src, "p.jpg")
    (src / "q.jpg").write_text("not a photo")
    enhance.main(["--input", str(src), "--result_dir", str(out), "--upscale", "2",
                  "--weight_path", str(SHIPPED)])
    assert (out / "p_compare.png").is_file()
    capsys.readouterr()
    assert run_enhance(src, out) == [str(src / "q.jpg")]
    printed = capsys.readouterr().out
    assert "kept 1 files of an earlier run that this one did not write: p_compare.png" in printed
    assert f"skipped 1 unreadable files: {src / 'q.jpg'}\nresults in {out}" in printed


@pytest.mark.parametrize("where", ["same", "inside"])
def test_enhance_never_writes_into_its_input(tmp_path, where):
    """Bug 3: --result_dir equal to or inside --input stops in one line; the user's own
    p_upscaled.png is kept and nothing is written."""
    src = tmp_path / "in"
    small_photo(src, "p.jpg")
    (src / "p_upscaled.png").write_bytes(b"the user's own")
    out = src if where == "same" else src / "out"
    with pytest.raises(SystemExit, match="overlaps --input"):
        run_enhance(src, out)
    assert (src / "p_upscaled.png").read_bytes() == b"the user's own"
    assert sorted(os.listdir(src)) == ["p.jpg", "p_upscaled.png"]


def test_one_photo_as_input_may_write_below_its_folder_not_into_it(tmp_path, monkeypatch):
    """--input a single photo: the default results/enhance below the photo's folder is fine
    (only that photo is read); the photo's own folder is refused, as a folder input is."""
    small_photo(tmp_path, "me.jpg")
    monkeypatch.chdir(tmp_path)
    enhance.main(["--input", "me.jpg", "--upscale", "2", "--weight_path", str(SHIPPED),
                  "--no_figures"])
    assert (tmp_path / "results" / "enhance" / "me_enhanced.png").is_file()
    with pytest.raises(SystemExit, match="overlaps --input"):
        run_enhance(tmp_path / "me.jpg", tmp_path)


def test_a_folder_of_another_script_or_of_the_user_is_refused(tmp_path):
    """The rule: a folder holding files no run marked, or another script's results, is not
    written to, and its files are kept."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(result_folders.FolderError, match="1 files that no enhance.py run"):
        result_folders.claim(str(mine), "enhance.py", "--result_dir")
    ours = result_folders.claim(str(tmp_path / "ours"), "test.py", "--result_dir")
    with pytest.raises(result_folders.FolderError, match="holds the results of test.py"):
        result_folders.claim(ours, "enhance.py", "--result_dir")
    assert result_folders.claim(ours, "test.py", "--result_dir") == ours
    assert (mine / "notes.txt").read_text() == "keep"


def prepare(src: Path, out: Path, min_size: int) -> dict:
    return prepare_data.main(["--input", str(src), "--output", str(out), "--min_size",
                              str(min_size)])


def manifest_rows(out: Path) -> list[dict]:
    import csv
    with open(out / prepare_data.MANIFEST, newline="") as f:
        return list(csv.DictReader(f))


def test_prepare_data_into_one_folder_from_two_inputs_writes_over_nothing(tmp_path, capsys):
    """Another folder's IMG_1.jpg (another photo of the same name) is named and left out, not
    taken as prepared in silence; its a.png, beside the earlier a.jpg, gets crops of its own
    (a.png_face<k>.png) instead of writing over a_face<k>.png."""
    first, second, out = tmp_path / "b1", tmp_path / "b2", tmp_path / "set"
    for folder, img_1 in ((first, GROUP), (second, PHOTOS / "2008_001009.jpg")):
        folder.mkdir()
        shutil.copy(img_1, folder / "IMG_1.jpg")
    shutil.copy(PHOTOS / "2008_001322.jpg", first / "a.jpg")
    Image.open(PHOTOS / "2008_001322.jpg").save(second / "a.png")
    prepare(first, out, 16)
    crops = {p.name: p.read_bytes() for p in out.glob("*_face*.png")}
    assert any(n.startswith("a_face") for n in crops) and any(n.startswith("IMG_1_face")
                                                              for n in crops)
    capsys.readouterr()
    prepare(second, out, 16)
    printed = capsys.readouterr().out
    assert (f"left out 1 photos whose name the manifest holds for another photo (an earlier "
            f"--input's): {second / 'IMG_1.jpg'}") in printed
    assert {n: (out / n).read_bytes() for n in crops} == crops
    rows = manifest_rows(out)
    assert {r["crop"] for r in rows if r["source"] == "a.png"} == {
        p.name for p in out.glob("a.png_face*.png")} != set()
    assert len({r["crop"] for r in rows if r["crop"]}) == len([r for r in rows if r["crop"]])


def test_prepare_data_rerun_after_a_cut_manifest_lists_every_crop_again(tmp_path):
    """A manifest whose last row was cut short (a kill or a full disk while it was written)
    gives no traceback: that photo is prepared again, and every crop on disk is listed once."""
    src, out = tmp_path / "raw", tmp_path / "set"
    src.mkdir()
    shutil.copy(PHOTOS / "2008_001322.jpg", src)
    prepare(src, out, 16)
    manifest = out / prepare_data.MANIFEST
    manifest.write_bytes(manifest.read_bytes()[:-40])
    prepare(src, out, 16)
    listed = sorted(r["crop"] for r in manifest_rows(out) if r["crop"])
    assert listed == sorted(p.name for p in out.glob("*_face*.png")) != []


def test_prepare_data_rerun_with_a_lower_min_size_writes_the_faces_it_now_keeps(tmp_path,
                                                                                capsys):
    """Bug 4: --min_size 64, then 32: the second run writes the crops of the faces of 32-64 px
    and counts as too small only faces under 32 px."""
    src = tmp_path / "raw"
    src.mkdir()
    shutil.copy(GROUP, src)
    first = prepare(src, tmp_path / "set", 64)
    assert first["too_small"] >= 5
    second = prepare(src, tmp_path / "set", 32)
    assert second["faces"] == first["faces"]
    assert second["written"] == first["written"] + first["too_small"] - second["too_small"]
    assert second["too_small"] == 0   # none of its faces is under 32 px
    assert len(list((tmp_path / "set").glob("*_face*.png"))) == second["written"]
    assert f"{second['written']} crops written, 0 faces skipped as smaller than 32 px" in \
        capsys.readouterr().out
    # back to 64: the crops of 32-64 px stay (never deleted), named in one line
    third = prepare(src, tmp_path / "set", 64)
    assert third["written"] == second["written"]
    assert (f"{first['too_small']} crops of an earlier run are smaller than --min_size 64 px"
            in capsys.readouterr().out)


@pytest.mark.parametrize("where", ["same", "inside"])
def test_prepare_data_never_writes_into_its_input(tmp_path, where):
    """Bug 5: --output equal to or inside --input stops in one line, before any crop."""
    src = tmp_path / "raw"
    src.mkdir()
    shutil.copy(GROUP, src)
    out = src if where == "same" else src / "faces"
    with pytest.raises(SystemExit, match="overlaps --input"):
        prepare(src, out, 32)
    assert os.listdir(src) == [GROUP.name]


def run_export(out: Path, fmt: str) -> list[str]:
    return export.main(["--weight_path", str(SHIPPED), "--output", str(out), "--format", fmt])


def test_export_keeps_what_is_in_its_output_folder(tmp_path, capsys):
    """Bug 6: a user's file in the output folder (or in an earlier export's savedmodel/) stops
    the export and is kept; an earlier export's file is replaced with a line saying so."""
    user = tmp_path / "E"
    (user / "savedmodel").mkdir(parents=True)
    (user / "savedmodel" / "mine.txt").write_text("keep")
    with pytest.raises(SystemExit, match="no export.py run wrote"):
        run_export(user, "savedmodel")
    assert (user / "savedmodel" / "mine.txt").read_text() == "keep"

    ours = tmp_path / "ours"
    run_export(ours, "savedmodel,frozen")
    (ours / "savedmodel" / "mine.txt").write_text("keep")
    with pytest.raises(SystemExit, match="savedmodel/mine.txt in --output .* would be lost"):
        run_export(ours, "savedmodel")
    assert (ours / "savedmodel" / "mine.txt").read_text() == "keep"
    capsys.readouterr()
    run_export(ours, "frozen")
    assert f"replacing {ours / 'frozen.pb'} of an earlier export" in capsys.readouterr().out


def test_a_failed_resume_keeps_the_runs_settings(dataset, tmp_path):
    """Bug 7: --model jeanet --continue_train on an EIPNet run stops in one line and leaves
    its opt.txt as it was."""
    train.main(train_args(dataset, tmp_path, "--niter", "2", "--save_freq", "2",
                          "--val_freq", "2"))
    settings = (tmp_path / "run" / "opt.txt").read_text()
    with pytest.raises(SystemExit, match="--continue_train: .* does not fit --model jeanet"):
        train.main(train_args(dataset, tmp_path, "--model", "jeanet", "--continue_train",
                              "--niter", "4"))
    assert (tmp_path / "run" / "opt.txt").read_text() == settings


@pytest.fixture
def open_folder():
    """A folder under /tmp that every user can read (pytest's tmp_path is the owner's only)."""
    path = Path(tempfile.mkdtemp())
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path)


def test_a_read_only_result_folder_is_one_line_before_the_model(open_folder):
    """Bug 8: test.py --result_dir <a read-only folder> ends in one line, not a traceback (run
    as nobody when the suite runs as root, whom no mode bit stops)."""
    tmp_path = open_folder
    out = tmp_path / "ro"
    out.mkdir(mode=0o555)
    faces = tmp_path / "faces"
    shutil.copytree(SHARED / "data" / "lfw128" / "val", faces,
                    ignore=lambda d, names: sorted(names)[2:])
    as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] \
        if os.geteuid() == 0 else []
    done = subprocess.run([*as_user, sys.executable, str(ROOT / "test.py"), "--weight_path",
                           str(SHIPPED), "--test_path", str(faces), "--result_dir", str(out),
                           "--eval_cache", "none"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(
        f"error: cannot write to --result_dir '{out}'")


def test_enhance_help_lists_only_what_enhance_uses():
    """enhance.py --help leaves out the training and evaluation options it parses but never
    uses (they were about 20 of its options); they still parse, for the code it shares."""
    from options.enhance_options import EnhanceOptions
    options = EnhanceOptions()
    opt = options.parse(["--input", "x", "--canny", "authors"], verbose=False)
    listed = options.parser.format_help()
    for name in ("--input", "--upscale", "--weight_path", "--model", "--all_faces"):
        assert name in listed
    for name in EnhanceOptions.unused:
        assert f"--{name} " not in listed and f"--{name}\n" not in listed, name
    assert opt.canny == "authors"


def test_default_result_folders_follow_the_weights_one_per_checkpoint(tmp_path):
    """test.py's result/ and export.py's export/ sit in the folder of --weight_path, one per
    checkpoint: G_weight_ema.ckpt or a model.ckpt-N never replaces G_weight.ckpt's results,
    and `export.py --model jeanet` no longer writes into EIPNet's folder."""
    run = str(tmp_path / "run")
    assert result_folders.beside(f"{run}/G_weight.ckpt", "result") == f"{run}/result"
    assert (result_folders.beside(f"{run}/G_weight_ema.ckpt", "result")
            == f"{run}/result_G_weight_ema.ckpt")
    assert result_folders.beside(f"{run}/model.ckpt-500", "export") == f"{run}/export_model.ckpt-500"
    written = export.main(["--weight_path", str(SHIPPED), "--format", "onnx", "--output",
                           str(tmp_path / "e")])
    assert written == [str(tmp_path / "e" / "model.onnx")]
    # an export folder written before the marker existed is still export.py's own
    (tmp_path / "e" / result_folders.MARKER).unlink()
    assert export.main(["--weight_path", str(SHIPPED), "--format", "onnx", "--output",
                        str(tmp_path / "e")]) == written
