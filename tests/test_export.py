"""export.py: every format of the shipped model, of the authors'-layout fixture and of the other
generators, reloaded by a client that imports none of this repository's code
(tests/export_client.py: tf.saved_model.load, import_graph_def, onnxruntime) and compared on
real lfw128/val faces with test.py's own SR; bad input; docs/deploy.md's client example; tools/runtimes.py."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import checkpoints
import data
from evaluation import metrics
import export
from networks import restored
import test as test_script
from conftest import OFFICIAL, ROOT, random_generator
from options.test_options import TestOptions
from tf1 import cpu_info, tf

pytestmark = pytest.mark.cpu_numbers   # reruns under tools/avx2_caps.py in .ci/run

SHIPPED = ROOT / "checkpoint" / "eipnet_lfw128"
CLIENT = Path(__file__).with_name("export_client.py")
FORMATS = list(export.FILES)
BATCHES = (1, 16)
EDGES = ("edge32", "edge64", "edge128")


def clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def run_client(exports: Path, lr: dict[str, np.ndarray], work: Path) -> dict:
    """Every format in `exports` on every input of `lr` {tag: (N,16,16,3)}, run by the
    standalone client in a folder outside the repository: {(format, tag): {name: array}}."""
    work.mkdir(parents=True, exist_ok=True)
    jobs = []
    for tag, x in lr.items():
        np.save(work / f"{tag}.npy", x)
        jobs += [{"format": fmt, "path": str(exports / export.FILES[fmt]),
                  "lr": str(work / f"{tag}.npy"), "result": str(work / f"{fmt}_{tag}.npz")}
                 for fmt in FORMATS]
    (work / "jobs.json").write_text(json.dumps(jobs))
    done = subprocess.run([sys.executable, str(CLIENT), "jobs.json"], cwd=work, env=clean_env(),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return {(fmt, tag): dict(np.load(work / f"{fmt}_{tag}.npz")) for fmt in FORMATS
            for tag in lr}


def options_for(weights: Path, model_name: str = "eipnet") -> object:
    return TestOptions().parse(["--weight_path", str(weights), "--model", model_name],
                               verbose=False)


def project_sr(weights: Path, lr: dict[str, np.ndarray], model_name: str = "eipnet") -> dict:
    """test.py's Generator on each input: {tag: {"sr": rgb, **side outputs}}."""
    opt = options_for(weights, model_name)
    gen = restored.Generator(opt, checkpoints.resolve(str(weights)))
    got = {}
    for tag, x in lr.items():
        rgb, extras = gen(x)
        got[tag] = {"sr": rgb, **extras}
    gen.close()
    return got


def run_export(weights: Path, out: Path, *args: str, model_name: str = "eipnet") -> Path:
    written = export.main(["--weight_path", str(weights), "--model", model_name,
                           "--output", str(out), *args])
    assert written == [str(out / export.FILES[fmt]) for fmt in FORMATS]
    return out


@pytest.fixture(scope="module")
def val_lr(val_paths) -> dict[str, np.ndarray]:
    """16 real val faces degraded to 16x16 by test.py's own loader, as batch 16 and batch 1."""
    opt = options_for(SHIPPED)
    lr = np.stack([test_script.load_sample(p, opt).lr for p in val_paths[::22][:16]])
    return {"b16": lr.astype(np.float32), "b1": lr[:1].astype(np.float32)}


@pytest.fixture(scope="module")
def shipped_reference(val_lr) -> dict:
    return project_sr(SHIPPED, val_lr)


@pytest.fixture(scope="module")
def shipped_float(tmp_path_factory, val_lr) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("float")
    out = run_export(SHIPPED, tmp / "export", "--side_outputs")
    return out, run_client(out, val_lr, tmp / "client")


def assert_close(got: dict, want: dict, atol: float = 1e-3) -> None:
    assert set(got) == set(want)
    for name, value in want.items():
        assert got[name].shape == value.shape, name
        assert got[name].dtype == np.float32, name
        assert np.abs(got[name] - value).max() < atol, (name, np.abs(got[name] - value).max())


@pytest.mark.parametrize("fmt", FORMATS)
def test_float_export_matches_test_py(fmt, shipped_float, shipped_reference):
    _, results = shipped_float
    for tag in ("b1", "b16"):
        want = shipped_reference[tag]
        assert set(want) == {"sr", *EDGES}
        assert want["sr"].std() > 20   # real faces, not a blank output
        assert_close(results[(fmt, tag)], want)
    assert results[(fmt, "b16")]["sr"].shape == (16, 128, 128, 3)
    assert results[(fmt, "b1")]["edge32"].shape == (1, 32, 32, 1)


@pytest.mark.parametrize("fmt", FORMATS)
def test_json_beside_each_export(fmt, shipped_float):
    out, results = shipped_float
    info = json.loads((out / f"{fmt}.json").read_text())
    rgb_kernel = dict(tf.train.list_variables(str(SHIPPED / "G_weight.ckpt")))["generator/RGB/w"]
    assert rgb_kernel[:2] == [3, 3]   # the shipped model has the paper's 3x3 tail
    assert info["model"] == "eipnet" and info["tail"] == "paper"
    assert info["architecture"] == {"tail": "paper", "edge_blocks": [1, 1, 1], "scale": 8}
    assert info["source_checkpoint"] == str(SHIPPED / "G_weight.ckpt")
    assert info["path"] == export.FILES[fmt]
    assert info["inputs"] == {"lr": {"dtype": "float32", "shape": [None, 16, 16, 3],
                                     "range": export.RANGES[("lr", "float32")]}}
    assert list(info["outputs"]) == ["sr", *EDGES]            # the names the client fetched
    assert set(results[(fmt, "b1")]) == set(info["outputs"])
    assert info["outputs"]["edge64"]["shape"] == [None, 64, 64, 1]
    assert "not clipped" in info["outputs"]["sr"]["range"]
    extra = {"savedmodel": ("signature", "serving_default"), "onnx": ("opset", 17),
             "frozen": ("load", "tf.import_graph_def; feed 'lr:0', fetch 'sr:0'")}[fmt]
    assert info[extra[0]] == extra[1]


def test_uint8_exports_within_one_grey_level(tmp_path, val_lr, shipped_reference):
    out = run_export(SHIPPED, tmp_path / "export", "--dtype", "uint8")
    lr = {tag: x.astype(np.uint8) for tag, x in val_lr.items()}
    results = run_client(out, lr, tmp_path / "client")
    for (fmt, tag), got in results.items():
        want = metrics.to_uint8(shipped_reference[tag]["sr"])   # as test.py saves it
        assert list(got) == ["sr"] and got["sr"].dtype == np.uint8, fmt
        diff = np.abs(got["sr"].astype(int) - want)
        assert diff.max() <= 1, (fmt, tag, diff.max())
        assert (diff > 0).mean() < 1e-3, (fmt, tag)   # only where a value sits on a .5
    info = json.loads((out / "onnx.json").read_text())
    assert info["inputs"]["lr"]["dtype"] == info["outputs"]["sr"]["dtype"] == "uint8"


def test_official_fixture_matches_reference(tmp_path):
    ref = np.load(OFFICIAL / "reference.npz")
    out = run_export(OFFICIAL, tmp_path / "export", "--side_outputs")
    results = run_client(out, {"ref": ref["lr"]}, tmp_path / "client")
    want = {"sr": ref["rgb"], "edge32": ref["edge1"], "edge64": ref["edge2"],
            "edge128": ref["edge3"]}
    for fmt in FORMATS:
        assert_close(results[(fmt, "ref")], want)
        info = json.loads((out / f"{fmt}.json").read_text())
        assert info["tail"] == "released"   # the authors' 1x1 last conv, read from the file
        assert info["source_checkpoint"] == str(OFFICIAL / "G_weight.ckpt")


@pytest.mark.parametrize("model_name, side", [
    ("jeanet", {"sr", *EDGES}),
    ("prior_guided", {"sr", "coarse", "parsing"}),
])
def test_other_generators_export(model_name, side, tmp_path, val_lr):
    weights = random_generator(model_name, tmp_path / "weights")
    out = run_export(weights, tmp_path / "export", "--side_outputs", model_name=model_name)
    lr = {"b16": val_lr["b16"][:8], "b1": val_lr["b1"]}
    want = project_sr(weights, lr, model_name)
    results = run_client(out, lr, tmp_path / "client")
    for (fmt, tag), got in results.items():
        assert set(want[tag]) == side
        assert want[tag]["sr"].std() > 0.1   # even random weights give a varying image
        assert_close(got, want[tag])
    assert json.loads((out / "frozen.json").read_text())["tail"] is None


def test_a_4x_eipnet_exports_with_a_32_px_input(tmp_path, val_paths):
    """The scale comes from the checkpoint: input [N,32,32,3], edge maps at 64 and 128 px, and
    the client's SR equal to test.py's on real faces at the bilinear chain's 32 px level."""
    weights = random_generator("eipnet", tmp_path / "weights", "--scale", "4")
    out = run_export(weights, tmp_path / "export", "--side_outputs")
    info = json.loads((out / "frozen.json").read_text())
    assert info["inputs"]["lr"]["shape"] == [None, 32, 32, 3]
    assert info["architecture"]["scale"] == 4 and set(info["outputs"]) == {"sr", "edge64", "edge128"}
    lr = {"b4": np.stack([data.degrade(data.read_image(p))[2] for p in val_paths[:4]])
          .astype(np.float32)}
    want = project_sr(weights, lr)
    for got in run_client(out, lr, tmp_path / "client").values():
        assert got["sr"].shape == (4, 128, 128, 3) and want["b4"]["sr"].std() > 0.1
        assert_close(got, want["b4"])


@pytest.mark.parametrize("case, message", [
    ("missing checkpoint", "no checkpoint at"),
    ("unknown model", "argument --model: invalid choice: 'eipnet2'"),
    ("checkpoint of another model", "does not fit a generator with --model jeanet"),
    ("unwritable output", "cannot write to --output"),
    ("unknown format", "unknown --format ['tflite']"),
])
def test_bad_input_one_line_message(case, message, tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    args = {
        "missing checkpoint": ["--weight_path", str(tmp_path / "nowhere")],
        "unknown model": ["--model", "eipnet2"],
        "checkpoint of another model": ["--model", "jeanet"],
        "unwritable output": ["--output", str(tmp_path / "a_file" / "export")],
        "unknown format": ["--format", "onnx,tflite"],
    }[case]
    defaults = {"--weight_path": str(SHIPPED), "--output": str(tmp_path / "out")}
    argv = [a for k, v in defaults.items() if k not in args for a in (k, v)] + args
    with pytest.raises(SystemExit) as exit_info:
        export.main(argv)
    text = str(exit_info.value.code)
    assert text.startswith("error: ") and message in text, text
    assert "\n" not in text
    assert not (tmp_path / "out").exists()   # nothing written, not even the folder


def readme_client() -> str:
    """The Python block of docs/deploy.md that loads the SavedModel."""
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    (code,) = [c for c in re.findall(r"```python\n(.*?)```", deploy, re.S)
               if "tf.saved_model.load" in c]
    return code


def test_readme_client_example(shipped_float, shipped_reference, val_lr, tmp_path):
    code = readme_client()
    assert len(code.strip().splitlines()) <= 12
    out, _ = shipped_float
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "eipnet").symlink_to(out)
    Image.fromarray(val_lr["b1"][0].astype(np.uint8)).save(tmp_path / "face16.png")
    (tmp_path / "client.py").write_text(code)
    done = subprocess.run([sys.executable, "client.py"], cwd=tmp_path, env=clean_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    got = np.asarray(Image.open(tmp_path / "face_SR.png")).astype(int)
    want = metrics.to_uint8(shipped_reference["b1"]["sr"][0])
    assert np.abs(got - want).max() <= 1


def test_runtimes_script_names_cpu_and_agrees():
    """tools/runtimes.py end to end, one short round: its table names the CPU and every fp32
    runtime's SR agrees with TF Session's (speeds are printed, never asserted)."""
    from tools import runtimes
    done = subprocess.run([sys.executable, "tools/runtimes.py", "--rounds", "1", "--calls_b1", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert any(line.startswith(f"CPU: {cpu_info()[0]}, {os.cpu_count()} cores") for line in lines)
    rows = {cells[0]: cells[1:] for cells in
            ([c.strip() for c in line.strip("|").split("|")] for line in lines
             if line.startswith("| ") and not line.startswith("| runtime"))}
    assert set(runtimes.RUNTIMES) <= set(rows)
    for name in runtimes.RUNTIMES:
        speed_b1, speed_b16, ratio_b1, _, diff = rows[name]
        assert float(speed_b1) > 0 and float(speed_b16) > 0
        assert float(diff) < 1e-3, (name, diff)
    assert rows[runtimes.REFERENCE][2] == "1.00x"
    assert any("faster than TF Session at both batch sizes" in line for line in lines)


def test_runtimes_names_a_runtime_that_does_not_load(tmp_path):
    """A runtime whose process dies while loading (here: no model.onnx in the export folder;
    OpenVINO's bf16 under ONEDNN_MAX_CPU_ISA=AVX2 died so) stops runtimes.py with its name;
    before, the parent waited on the pipe for ever."""
    from tools import runtimes
    with pytest.raises(RuntimeError, match="ONNX Runtime \\(CPU\\) did not load"):
        runtimes.start(["ONNX Runtime (CPU)"], str(tmp_path), [])
