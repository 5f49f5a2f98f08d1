"""test.py's per-face work and its plumbing at dataset scale, without TensorFlow so that it runs
in worker processes:
- `score_face`: the CPU metrics of one face (everything of Section 4.3 but FaceNet, which runs
  in test.py's process beside the generator) and its output images;
- `FacePool`: those tasks spread over spawned worker processes, results back in order, a
  bounded number in flight (the generator produces, the workers consume);
- `CsvLog`: metrics.csv written a row at a time and read back, for --resume and the summary.
"""
from __future__ import annotations

import collections
import contextlib
import csv
import multiprocessing as mp
import os
import sys
from typing import Iterator, NamedTuple

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

import metrics
import parsing

METHODS = ("sr", "bicubic")
PANEL_TITLES = {"coarse": "coarse SR", "parsing": "parsing maps"}   # and "edge 32" etc.
# compare figure layout, in pixels
PANEL, GAP, TITLE, HEADER, DPI = 144, 24, 40, 24, 100
TEXT_COLUMNS = ("file", "input", "face_box")
# one worker thread each: the workers share the cores with the generator and one another
SINGLE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


class Sample(NamedTuple):
    name: str
    stem: str               # output files are <stem>_SR.png etc., unique in the folder
    lr: np.ndarray          # (16,16,3) uint8
    hr: np.ndarray | None   # (128,128,3) uint8; None for an LR input


class FaceTask(NamedTuple):
    """Everything one face needs, picklable: the sample, the methods' uint8 outputs, the model's
    other outputs (edge maps, ...), and what to compute and write."""
    sample: Sample
    outputs: dict           # method -> (128,128,3) uint8
    extras: dict            # tag -> the model's float output for this face
    wanted: list            # csv metrics to compute (dist_network is done by the caller)
    y_channel: bool
    out_dir: str
    figure: bool
    names: dict             # method -> title in the figure


def needs_box(wanted: list[str]) -> bool:
    return bool({"fr_psnr", "dist_algorithm"} & set(wanted))


def face_metrics(outputs: dict, hr: np.ndarray, wanted: list[str], y: bool) -> dict:
    """csv fields of one HR face: its box, each method's metrics, BRISQUE of HR. dlib works
    once per face where it can: one detection (the box of FR-PSNR/SSIM and of the encodings)
    and one HR encoding for both methods; each method's own encoding needs its own landmarks."""
    row = {}
    box = metrics.face_box(hr) if needs_box(wanted) else None
    if box:
        row["face_box"] = " ".join(map(str, box))   # top right bottom left
    hr_code = metrics.face_encoding(hr, box) if box and "dist_algorithm" in wanted else None
    for m in METHODS:
        img = outputs[m]
        compute = {
            "psnr": lambda: metrics.psnr(img, hr, y),
            "fr_psnr": lambda: metrics.fr_psnr(img, hr, box, y),
            "ssim": lambda: metrics.ssim(img, hr, y),
            "fr_ssim": lambda: metrics.fr_ssim(img, hr, box, y),
            "vif": lambda: metrics.vif(img, hr),
            "dist_algorithm": lambda: metrics.algorithm_distance(img, hr, box, hr_code),
            "brisque": lambda: metrics.brisque(img),
        }
        row.update({f"{k}_{m}": compute[k]() for k in wanted if k in compute})
    if "brisque" in wanted:
        row["brisque_hr"] = metrics.brisque(hr)
    return row


def score_face(task: FaceTask) -> dict:
    """The csv row of one face (the file name only for an LR input), its images written first:
    a row in metrics.csv means the face's files are complete."""
    s = task.sample
    row = {"file": s.name, "input": "lr" if s.hr is None else "hr"}
    if s.hr is not None and task.wanted:
        row.update(face_metrics(task.outputs, s.hr, task.wanted, task.y_channel))
    write_images(s, task.outputs["sr"], task.outputs["bicubic"], task.extras, task.out_dir,
                 task.figure, row, task.names)
    return row


def picture(tag: str, x: np.ndarray) -> np.ndarray:
    """uint8 image of one extra output: an edge map, the coarse SR or the parsing maps."""
    if tag == "parsing":
        return parsing.colorize(x)
    return metrics.to_uint8(x[..., 0] if tag.startswith("edge") else x)


def write_images(sample: Sample, sr: np.ndarray, bic: np.ndarray, extras: dict, out_dir: str,
                 figure: bool, row: dict, names: dict) -> None:
    images = {"SR": sr, "bicubic": bic, **{tag: picture(tag, x) for tag, x in extras.items()}}
    for tag, img in images.items():
        Image.fromarray(img).save(os.path.join(out_dir, f"{sample.stem}_{tag}.png"))
    if figure:
        compare_figure(sample, images, row, os.path.join(out_dir, f"{sample.stem}_compare.png"),
                       names)


def scored_title(method: str, row: dict, names: dict) -> str:
    """The method's name, with its PSNR / SSIM under it when they were computed."""
    scores = [f"{row[k]:.2f} dB" if "psnr" in k else f"{row[k]:.4f}"
              for k in (f"psnr_{method}", f"ssim_{method}") if k in row]
    return "\n".join([names[method], " / ".join(scores)] if scores else [names[method]])


def compare_figure(sample: Sample, images: dict, row: dict, path: str, names: dict) -> None:
    """LR | bicubic | SR | HR | edge maps or coarse SR and parsing maps of one image, each
    panel at PANEL px with its title above. The panels are drawn straight onto the figure
    (figimage): axes and a tight bounding box cost 0.3 s a figure, more than the metrics."""
    panels = [("LR 16x16", sample.lr), (scored_title("bicubic", row, names), images["bicubic"]),
              (scored_title("sr", row, names), images["SR"])]
    if sample.hr is not None:
        panels.append((names["hr"], sample.hr))
    panels += [(PANEL_TITLES.get(tag, tag.replace("edge", "edge ")), img)
               for tag, img in images.items() if tag not in ("SR", "bicubic")]
    width, height = len(panels) * (PANEL + GAP) + GAP, PANEL + TITLE + HEADER
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    for k, (title, img) in enumerate(panels):
        x = GAP + k * (PANEL + GAP)
        big = cv2.resize(img, (PANEL, PANEL), interpolation=cv2.INTER_NEAREST)
        fig.figimage(big, x, 0, cmap="gray", vmin=0, vmax=255, origin="upper")  # cmap: edges
        fig.text((x + PANEL / 2) / width, (PANEL + 4) / height, title, ha="center",
                 va="bottom", fontsize=9)
    fig.text(0.5, 1 - 4 / height, sample.name, ha="center", va="top", fontsize=9)
    fig.savefig(path, dpi=DPI, facecolor="white")


def _worker_start() -> None:
    cv2.setNumThreads(1)


@contextlib.contextmanager
def _spawn_environment():
    """Start workers with one thread each and without re-running the __main__ script: spawn
    re-imports it in every worker, and test.py imports TensorFlow, which the workers never
    use. (A fork would copy the parent's TensorFlow and dlib thread state, which is unsafe.)"""
    main = sys.modules.get("__main__")
    script = main.__dict__.pop("__file__", None) if main is not None else None
    saved = {k: os.environ.get(k) for k in SINGLE_THREAD}
    os.environ.update(SINGLE_THREAD)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                del os.environ[k]
            else:
                os.environ[k] = v
        if script is not None:
            main.__file__ = script


class FacePool:
    """score_face over `workers` spawned processes (0: in this process), the rows back in the
    order the tasks came in. At most `depth` tasks are in flight, so memory stays flat and the
    caller (the generator) runs ahead of the workers by that much and no more."""

    def __init__(self, workers: int, depth: int):
        self.pool = None
        if workers > 0:
            with _spawn_environment():
                self.pool = mp.get_context("spawn").Pool(workers, initializer=_worker_start)
        self.depth = max(depth, 1)
        self.pending: collections.deque = collections.deque()

    def submit(self, task: FaceTask, extra: dict) -> Iterator[dict]:
        """Queue one face (`extra`: fields the caller computed, added to its row); yields the
        rows now due, waiting for the oldest while `depth` are in flight."""
        if self.pool is None:
            yield {**score_face(task), **extra}
            return
        self.pending.append((self.pool.apply_async(score_face, (task,)), extra))
        while self.pending and (len(self.pending) > self.depth or self.pending[0][0].ready()):
            yield self._next()

    def drain(self) -> Iterator[dict]:
        while self.pending:
            yield self._next()

    def _next(self) -> dict:
        result, extra = self.pending.popleft()
        return {**result.get(), **extra}

    def __enter__(self) -> FacePool:
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.terminate()   # after drain() nothing is left; on an error, stop at once
            self.pool.join()


class CsvLog:
    """metrics.csv, one row appended and flushed per face, so a killed run keeps every face
    it finished. resume=True keeps the rows there (a row cut short by a kill is dropped, its
    face is scored again); otherwise the file starts afresh."""

    def __init__(self, path: str, cols: list[str], resume: bool):
        self.path, self.cols = path, cols
        self.done = self._keep_complete_rows() if resume and os.path.isfile(path) else set()
        self.file = open(path, "a" if self.done else "w", newline="")
        self.writer = csv.DictWriter(self.file, cols, restval="")
        if not self.done:
            self.writer.writeheader()

    def _keep_complete_rows(self) -> set[str]:
        with open(self.path, "rb") as f:
            text = f.read()
        complete = text[:text.rfind(b"\n") + 1]
        if complete != text:
            with open(self.path, "wb") as f:
                f.write(complete)
        header = next(csv.reader([complete.decode().split("\n", 1)[0]]), None)
        if header is None:
            return set()
        if header != self.cols:
            raise ValueError(f"{self.path!r} has the columns {header}, not those of these "
                             f"--metrics {self.cols}: rerun with the --metrics it was made with, "
                             f"or without --resume to start it again")
        return {row["file"] for row in read_rows(self.path)}

    def write(self, row: dict) -> None:
        self.writer.writerow(row)
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def read_rows(path: str) -> list[dict]:
    """metrics.csv back as rows: numbers as floats, empty fields left out (as when scored)."""
    with open(path, newline="") as f:
        return [{k: v if k in TEXT_COLUMNS else float(v) for k, v in row.items() if v != ""}
                for row in csv.DictReader(f)]
