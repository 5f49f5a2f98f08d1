"""test.py's fast evaluation path (issue 17) against the reference implementations, on the
shipped model's real SR of real lfw128/val faces; and a killed evaluation resumed."""
from __future__ import annotations

import csv
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sewar.full_ref import vifp

import data
import result_folders
from evaluation import metrics, scoring
import test as test_script
from conftest import LFW, ROOT, copy_faces, face_recognition_api
from options.test_options import TestOptions

SHIPPED = ROOT / "checkpoint" / "eipnet_lfw128"
# Jon_Stewart_0001: HOG finds no face, so it has no box and no algorithm distance
FACES = ["Abraham_Foxman_0001", "Alec_Baldwin_0001", "Alec_Baldwin_0002", "Jon_Stewart_0001",
         "Aby_Har-Even_0001", "Ahmad_Masood_0001", "Albert_Brooks_0001", "Alex_Popov_0001"]


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def args_for(faces: Path, out: Path, *extra: str) -> list[str]:
    return ["--weight_path", str(SHIPPED), "--test_path", str(faces), "--result_dir", str(out),
            "--no_figures", *extra]


@pytest.fixture(scope="module")
def faces_dir(tmp_path_factory) -> Path:
    return copy_faces([LFW / "val" / f"{n}.jpg" for n in FACES], tmp_path_factory.mktemp("faces"))


@pytest.fixture(scope="module")
def fast_run(faces_dir, tmp_path_factory):
    """Every metric of 6 faces on two worker processes, batches of 4 (one full, one partial)."""
    folder = tmp_path_factory.mktemp("six")
    six = copy_faces([faces_dir / f"{n}.jpg" for n in FACES[:6]], folder / "faces")
    out = folder / "result"
    # no cache: every value here is computed, none read from an earlier test's run
    test_script.main(args_for(six, out, "--batchSize", "4", "--workers", "2", "--eval_cache",
                              "none"))
    return out, scoring.read_rows(str(out / "metrics.csv"))


def outputs(out: Path, row: dict) -> tuple[np.ndarray, dict]:
    """HR (test.py's own crop of the file) and the SR and bicubic images test.py saved."""
    hr = data.read_image(str(LFW / "val" / row["file"]))
    stem = row["file"][:-len(".jpg")]
    return hr, {m: np.asarray(Image.open(out / f"{stem}_{tag}.png"))
                for m, tag in (("sr", "SR"), ("bicubic", "bicubic"))}


def midpoints(values: list[float]) -> list[float]:
    """Thresholds between consecutive distances: TAR decisions that go both ways."""
    v = sorted(values)
    return [(a + b) / 2 for a, b in zip(v, v[1:])]


def test_fast_vif_and_dlib_match_sewar_and_face_recognition(fast_run):
    """VIF against sewar's vifp, the algorithm distance against face_recognition's own
    face_encodings (landmarks recomputed on every call, HR encoded once per method)."""
    out, rows = fast_run
    dist = {"fast": [], "reference": []}
    for row in rows:
        hr, imgs = outputs(out, row)
        box = metrics.face_box(hr)
        for m, img in imgs.items():
            want = vifp(hr.astype(np.float64), img.astype(np.float64))
            assert rel(row[f"vif_{m}"], want) < 1e-4 and 0.1 < want < 0.5
            if box is None:
                assert f"dist_algorithm_{m}" not in row
                continue
            codes = [face_recognition_api().face_encodings(x, known_face_locations=[box])[0]
                     for x in (img, hr)]
            want = float(np.linalg.norm(codes[0] - codes[1]))
            assert rel(row[f"dist_algorithm_{m}"], want) < 1e-4
            dist["fast"].append(row[f"dist_algorithm_{m}"])
            dist["reference"].append(want)
    assert len(dist["fast"]) == 10   # 5 detected faces x 2 methods
    thresholds = TestOptions().parse([], verbose=False).tar_algorithm + midpoints(dist["reference"])
    for d in thresholds:
        assert [x < d for x in dist["fast"]] == [x < d for x in dist["reference"]], d


def test_batched_facenet_matches_one_image_at_a_time(fast_run):
    """dist_network from test.py's batches (HR, SR, bicubic of a batch in one run) against
    FaceNet run on each image alone."""
    out, rows = fast_run
    net = metrics.FaceNet(batch=1)
    fast, reference = [], []
    for row in rows:
        hr, imgs = outputs(out, row)
        hr_vec = net(hr[None])
        for m, img in imgs.items():
            want = float(metrics.squared_distances(net(img[None]), hr_vec)[0])
            assert rel(row[f"dist_network_{m}"], want) < 1e-4
            fast.append(row[f"dist_network_{m}"])
            reference.append(want)
    net.close()
    for d in TestOptions().parse([], verbose=False).tar_network + midpoints(reference):
        assert [x < d for x in fast] == [x < d for x in reference], d


def test_workers_write_what_one_process_writes(fast_run, tmp_path):
    """--workers 0 (everything in this process) gives the csv of two workers: the same boxes,
    the same values to rounding (a worker runs one BLAS thread, so BRISQUE's sums, and
    TensorFlow's FaceNet from one run to the next, may move in the 12th digit)."""
    out, rows = fast_run
    test_script.main(args_for(out.parent / "faces", tmp_path / "result", "--batchSize", "4",
                              "--workers", "0", "--eval_cache", "none"))
    alone = scoring.read_rows(str(tmp_path / "result" / "metrics.csv"))
    assert [list(r) for r in alone] == [list(r) for r in rows]
    for a, b in zip(alone, rows):
        for k, v in b.items():
            assert a[k] == (v if isinstance(v, str) else pytest.approx(v, rel=1e-9)), k


def csv_rows(path: Path) -> int:
    if not path.is_file():
        return 0
    with open(path, newline="") as f:
        return max(sum(1 for line in f if line.endswith("\n")) - 1, 0)


def test_killed_evaluation_resumes_to_the_same_summary(faces_dir, tmp_path):
    """A real test.py run SIGKILLed after two faces, resumed with --resume (after a row cut
    short by the kill), ends with the csv and summary of an uninterrupted run."""
    args = ["--batchSize", "2", "--workers", "1"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "test.py", *args_for(faces_dir, killed, *args)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while csv_rows(killed / "metrics.csv") < 2 and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    done = csv_rows(killed / "metrics.csv")
    assert 2 <= done < len(FACES)
    with open(killed / "metrics.csv", "a") as f:
        f.write("Zz_0001.jpg,hr,12 1")         # what a kill mid-write leaves
    resumed = test_script.main(args_for(faces_dir, killed, *args, "--resume"))
    whole = test_script.main(args_for(faces_dir, tmp_path / "whole", *args))
    assert resumed == whole
    assert (killed / "metrics.csv").read_text() == (tmp_path / "whole" / "metrics.csv").read_text()
    assert (killed / "summary.md").read_text() == (tmp_path / "whole" / "summary.md").read_text()
    with open(killed / "metrics.csv", newline="") as f:
        assert [r["file"] for r in csv.DictReader(f)] == sorted(f"{n}.jpg" for n in FACES)
    assert whole["images"] == {"total": 8, "scored": 8, "lr_only": 0, "skipped": [],
                               "no_face": 1}


def test_resume_with_other_metrics_stops_and_keeps_the_csv(faces_dir, tmp_path):
    out = tmp_path / "result"
    out.mkdir()
    made = "file,input,psnr_sr,psnr_bicubic\na.jpg,hr,20.0,19.0\n"   # --metrics psnr
    (out / "metrics.csv").write_text(made)
    with pytest.raises(SystemExit) as stopped:
        test_script.main(args_for(faces_dir, out, "--resume"))
    message = str(stopped.value.code)
    assert message.startswith(f"error: {str(out / 'metrics.csv')!r} has the columns")
    assert "without --resume" in message and "\n" not in message
    assert (out / "metrics.csv").read_text() == made
    # nothing else written but result_folders' marker of the folder test.py claimed
    assert sorted(p.name for p in out.iterdir()) == sorted(["metrics.csv", result_folders.MARKER])


def test_resume_with_other_settings_stops_and_keeps_the_csv(faces_dir, tmp_path):
    """metrics.settings.json keeps what every row shares; a --resume that would mix another
    degradation or Y-channel scoring into the csv names the options and changes nothing."""
    out = tmp_path / "result"
    test_script.main(args_for(faces_dir, out, "--metrics", "psnr", "--workers", "0"))
    made = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(SystemExit) as stopped:
        test_script.main(args_for(faces_dir, out, "--metrics", "psnr", "--resume",
                                  "--y_channel", "--degradation", "bicubic"))
    message = str(stopped.value.code)
    assert message.startswith(f"error: {str(out / 'metrics.csv')!r} was scored with")
    assert "--degradation 'bilinear_chain' (now 'bicubic')" in message
    assert "--y_channel False (now True)" in message and "without --resume" in message
    assert {p.name: p.read_bytes() for p in out.iterdir()} == made
    # another folder of faces: its x.jpg is not the x.jpg scored before
    other = copy_faces([faces_dir / f"{FACES[0]}.jpg"], tmp_path / "other")
    with pytest.raises(SystemExit, match=f"--test_path {str(faces_dir)!r} \\(now "
                                         f"{str(other)!r}\\)"):
        test_script.main(args_for(other, out, "--metrics", "psnr", "--resume"))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == made


def test_weights_that_do_not_fit_keep_the_last_results(faces_dir, tmp_path):
    """A rerun into a result folder that stops on its weights (EIPNet's, passed as JEANet's)
    leaves the folder's metrics.csv and settings as the last run wrote them."""
    out = tmp_path / "result"
    test_script.main(args_for(faces_dir, out, "--metrics", "psnr", "--workers", "0"))
    made = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(SystemExit, match="does not fit a generator with --model jeanet"):
        test_script.main(args_for(faces_dir, out, "--metrics", "psnr", "--model", "jeanet"))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == made


def test_rerun_with_the_cache_scores_only_sr_and_writes_the_same_results(faces_dir, tmp_path,
                                                                         monkeypatch):
    """A second run on the same faces takes each face's box, HR encoding, HR FaceNet vector
    and bicubic metrics from --eval_cache: it detects no face, encodes and embeds only SR, and
    writes the first run's rows (the cached fields exactly) and TARs."""
    calls = Counter()

    def count(name):
        original = getattr(metrics, name)
        monkeypatch.setattr(metrics, name, lambda *a, **k: (calls.update([name]),
                                                            original(*a, **k))[1])
    for name in ("face_box", "face_encoding", "brisque", "vif"):
        count(name)
    embed = metrics.FaceNet.__call__
    monkeypatch.setattr(metrics.FaceNet, "__call__", lambda net, images: (
        calls.update({"facenet images": len(images)}), embed(net, images))[1])
    summaries, counts = {}, {}
    for run in ("cold", "warm"):
        calls.clear()
        summaries[run] = test_script.main(args_for(
            faces_dir, tmp_path / run, "--batchSize", "4", "--workers", "0",
            "--eval_cache", str(tmp_path / "refs.sqlite")))
        counts[run] = dict(calls)
    n, found = len(FACES), len(FACES) - 1   # HOG misses Jon_Stewart_0001
    assert counts["cold"] == {"face_box": n, "face_encoding": 3 * found, "brisque": 3 * n,
                              "vif": 2 * n, "facenet images": 3 * n}
    assert counts["warm"] == {"face_encoding": found, "brisque": n, "vif": n,
                              "facenet images": n}
    cold, warm = (scoring.read_rows(str(tmp_path / run / "metrics.csv"))
                  for run in ("cold", "warm"))
    assert [list(r) for r in warm] == [list(r) for r in cold]
    for a, b in zip(warm, cold):
        for k, v in b.items():
            if scoring.is_reference_field(k) or isinstance(v, str):
                assert a[k] == v, k                      # from the cache, as first written
            else:   # SR, scored again: BRISQUE's numpy sums may round in the 14th digit
                assert a[k] == pytest.approx(v, rel=1e-9), k
    assert summaries["warm"]["tar"] == summaries["cold"]["tar"]
    for m, means in summaries["cold"]["metrics"].items():
        assert summaries["warm"]["metrics"][m] == pytest.approx(means, rel=1e-9), m


def test_reference_cache_round_trip_misses_and_a_bad_file(tmp_path, monkeypatch):
    """Exact round trip; another setting or image is a miss; a cache locked by another run
    past the timeout, or a file that is not a cache, is warned about and not used (the run
    goes on); the default lives in the user's cache folder."""
    ref = scoring.Reference({"face_box": "17 112 106 23", "psnr_bicubic": 23.456789012345678,
                                "brisque_hr": 1 / 3}, np.linspace(-1, 1, 128),
                               np.linspace(0, 1, 512, dtype=np.float32))
    path = str(tmp_path / "new" / "refs.sqlite")
    cache = scoring.ReferenceCache(path, {"dataset": "aligned"})
    cache.put("f00d", ref)
    cache.put("none", scoring.Reference({"psnr_bicubic": 20.0}, None, None))
    cache.close()
    got = scoring.ReferenceCache(path, {"dataset": "aligned"}).get(["f00d", "none", "beef"])
    assert sorted(got) == ["f00d", "none"] and got["f00d"].row == ref.row
    for key, dtype in (("hr_code", np.float64), ("hr_facenet", np.float32)):
        assert getattr(got["f00d"], key).dtype == dtype
        assert np.array_equal(getattr(got["f00d"], key), getattr(ref, key))
    assert got["none"] == scoring.Reference({"psnr_bicubic": 20.0}, None, None)
    assert scoring.ReferenceCache(path, {"dataset": "celeba"}).get(["f00d"]) == {}
    monkeypatch.setattr(scoring.ReferenceCache, "TIMEOUT", 0.1)
    locked = scoring.ReferenceCache(path, {"dataset": "aligned"})
    other = sqlite3.connect(path)
    other.execute("BEGIN EXCLUSIVE")          # another run writing, past the timeout
    with pytest.warns(UserWarning, match="database is locked"):
        locked.put("beef", ref)
        locked.commit()
    assert locked.db is None and locked.get(["f00d"]) == {}   # off from then on, no error
    locked.close()
    other.rollback()
    other.close()
    bad = tmp_path / "notes.sqlite"
    bad.write_text("not a database")
    with pytest.warns(UserWarning, match="notes.sqlite"):
        ignored = scoring.ReferenceCache(str(bad), {"dataset": "aligned"})
    ignored.put("f00d", ref)
    assert ignored.get(["f00d"]) == {}
    ignored.close()
    assert bad.read_text() == "not a database"
    default = TestOptions().parse([], verbose=False).eval_cache
    assert default.startswith(os.environ["XDG_CACHE_HOME"]) and default.endswith(".sqlite")
