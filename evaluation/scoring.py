"""test.py's per-face work and its plumbing at dataset scale, without TensorFlow so that it runs
in worker processes:
- `score_face`: the CPU metrics of one face (everything of Section 4.3 but FaceNet, and LPIPS,
  which run in test.py's process beside the generator) and its output images;
- `FacePool`: those tasks spread over spawned worker processes, results back in order, a
  bounded number in flight (the generator produces, the workers consume);
- `CsvLog`: metrics.csv written a row at a time and read back, for --resume and the summary;
- `ReferenceCache`: each face's model-independent results (the bicubic baseline's metrics, the
  HR face box and identity vectors) kept between runs, so a rerun on the same test set scores
  only the model's output.
"""
from __future__ import annotations

import collections
import contextlib
import csv
import functools
import hashlib
import json
import multiprocessing as mp
import os
import sqlite3
import sys
import warnings
from typing import Iterator, NamedTuple

import cv2
import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from evaluation import metrics
from photos import parsing

METHODS = ("sr", "bicubic")
PANEL_TITLES = {"coarse": "coarse SR", "parsing": "parsing maps"}   # and "edge 32" etc.
# compare figure layout, in pixels
PANEL, GAP, TITLE, HEADER, DPI = 144, 24, 40, 24, 100   # DPI: the title font's pt to px
TEXT_COLUMNS = ("file", "input", "face_box")
# one worker thread each: the workers share the cores with the generator and one another
SINGLE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


class Sample(NamedTuple):
    name: str
    stem: str               # output files are <stem>_SR.png etc., unique in the folder
    lr: np.ndarray          # (16,16,3) uint8
    hr: np.ndarray | None   # (128,128,3) uint8; None for an LR input
    digest: str | None = None   # sha1 of the file's bytes, the ReferenceCache key of an HR input


class Reference(NamedTuple):
    """What one face's scores need that does not depend on the model: its csv fields that are
    not the model's (face_box, every <metric>_bicubic, brisque_hr), HR's dlib encoding and
    HR's FaceNet vector (None when that metric is off or, for dlib, no face was found)."""
    row: dict
    hr_code: np.ndarray | None
    hr_facenet: np.ndarray | None


class Scored(NamedTuple):
    row: dict                   # the face's csv row
    hr_code: np.ndarray | None  # HR's dlib encoding when it was computed (not cached)


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
    reference: Reference | None = None   # cached: only the model's output is scored


def is_reference_field(key: str) -> bool:
    return key == "face_box" or key == "brisque_hr" or key.endswith("_bicubic")


def needs_box(wanted: list[str]) -> bool:
    return bool({"fr_psnr", "dist_algorithm"} & set(wanted))


def face_metrics(outputs: dict, hr: np.ndarray, wanted: list[str], y: bool,
                 reference: Reference | None = None) -> Scored:
    """csv fields of one HR face: its box, each method's metrics, BRISQUE of HR. dlib works
    once per face where it can: one detection (the box of FR-PSNR/SSIM and of the encodings)
    and one HR encoding for both methods; each method's own encoding needs its own landmarks.
    With a `reference`, its fields are taken as they are and only SR is scored."""
    if reference is None:
        box = metrics.face_box(hr) if needs_box(wanted) else None
        row = {"face_box": " ".join(map(str, box))} if box else {}   # top right bottom left
        hr_code = metrics.face_encoding(hr, box) if box and "dist_algorithm" in wanted else None
        if "brisque" in wanted:
            row["brisque_hr"] = metrics.brisque(hr)
    else:
        row, hr_code = dict(reference.row), reference.hr_code
        box = tuple(map(int, row["face_box"].split())) if "face_box" in row else None
    for m in METHODS if reference is None else ("sr",):
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
    return Scored(row, hr_code if reference is None else None)


def score_face(task: FaceTask) -> Scored:
    """The csv row of one face (the file name only for an LR input), its images written first:
    a row in metrics.csv means the face's files are complete."""
    s = task.sample
    scored = Scored({}, None)
    if s.hr is not None and task.wanted:
        scored = face_metrics(task.outputs, s.hr, task.wanted, task.y_channel, task.reference)
    row = {"file": s.name, "input": "lr" if s.hr is None else "hr", **scored.row}
    write_images(s, task.outputs["sr"], task.outputs["bicubic"], task.extras, task.out_dir,
                 task.figure, row, task.names)
    return scored._replace(row=row)


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


@functools.lru_cache(maxsize=1)
def _font() -> ImageFont.FreeTypeFont:
    """matplotlib's DejaVu Sans (shipped with it, so nothing is fetched) at 9 pt, 100 dpi."""
    return ImageFont.truetype(os.path.join(matplotlib.get_data_path(), "fonts", "ttf",
                                           "DejaVuSans.ttf"), round(9 * DPI / 72))


def compare_figure(sample: Sample, images: dict, row: dict, path: str, names: dict) -> None:
    """LR | bicubic | SR | HR | edge maps or coarse SR and parsing maps of one image, each
    panel at PANEL px with its title above. Drawn with PIL onto one canvas: matplotlib took
    45 ms a figure (0.3 s with axes), which is a third of a face's time in a worker once its
    model-independent results are cached."""
    lr = sample.lr.shape[0]
    panels = [(f"LR {lr}x{lr}", sample.lr), (scored_title("bicubic", row, names), images["bicubic"]),
              (scored_title("sr", row, names), images["SR"])]
    if sample.hr is not None:
        panels.append((names["hr"], sample.hr))
    panels += [(PANEL_TITLES.get(tag, tag.replace("edge", "edge ")), img)
               for tag, img in images.items() if tag not in ("SR", "bicubic")]
    width, height = len(panels) * (PANEL + GAP) + GAP, PANEL + TITLE + HEADER
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for k, (title, img) in enumerate(panels):
        x = GAP + k * (PANEL + GAP)
        big = cv2.resize(img, (PANEL, PANEL), interpolation=cv2.INTER_NEAREST)
        canvas.paste(Image.fromarray(big).convert("RGB"), (x, height - PANEL))  # edges: gray
        draw.multiline_text((x + PANEL / 2, height - PANEL - 4), title, fill="black",
                            font=_font(), anchor="md", align="center")
    draw.text((width / 2, 4), sample.name, fill="black", font=_font(), anchor="ma")
    canvas.save(path, compress_level=1)   # 7 ms instead of 18 ms, 17% larger


def _worker_start(wanted: list[str]) -> None:
    cv2.setNumThreads(1)
    # load the models now, while the main process loads its own, not on the first face
    if needs_box(wanted):
        metrics.face_models()
    if "brisque" in wanted:
        metrics.brisque_model()


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


class _Done(NamedTuple):
    """A face scored in this process, with the two methods of a worker's AsyncResult."""
    value: Scored

    def ready(self) -> bool:
        return True

    def get(self) -> Scored:
        return self.value


class FacePool:
    """score_face over `workers` spawned processes (0: in this process), the faces back in the
    order they came in. At most `depth` are in flight, so memory stays flat and the caller (the
    generator) runs ahead of the workers by that much and no more."""

    def __init__(self, workers: int, depth: int, wanted: list[str]):
        self.pool = None
        if workers > 0:
            with _spawn_environment():
                self.pool = mp.get_context("spawn").Pool(workers, _worker_start, (wanted,))
        self.depth = max(depth, 1)
        self.pending: collections.deque = collections.deque()

    def submit(self, task: FaceTask) -> None:
        """Queue one face; without workers it is scored now."""
        self.pending.append(_Done(score_face(task)) if self.pool is None else
                            self.pool.apply_async(score_face, (task,)))

    def due(self) -> Iterator[Scored]:
        """The faces done, oldest first, waiting for the oldest while more than `depth` are in
        flight."""
        while self.pending and (len(self.pending) > self.depth or self.pending[0].ready()):
            yield self.pending.popleft().get()

    def drain(self) -> Iterator[Scored]:
        while self.pending:
            yield self.pending.popleft().get()

    def __enter__(self) -> FacePool:
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.terminate()   # after drain() nothing is left; on an error, stop at once
            self.pool.join()


class CsvLog:
    """metrics.csv, one row appended and flushed per face, so a killed run keeps every face
    it finished. resume=True keeps the rows there (a row cut short by a kill is dropped, its
    face is scored again); otherwise the file starts afresh. `settings` (option -> value), what
    every row must share, are kept beside it in metrics.settings.json: a resume with other
    settings would mix two evaluations in one csv, so it stops before touching anything."""

    def __init__(self, path: str, cols: list[str], resume: bool, settings: dict):
        self.path, self.cols = path, cols
        self.settings_path = os.path.splitext(path)[0] + ".settings.json"
        resuming = resume and os.path.isfile(path)
        if resuming:
            self._check_settings(settings)
        self.done = self._keep_complete_rows() if resuming else set()
        self.file = open(path, "a" if self.done else "w", newline="")
        self.writer = csv.DictWriter(self.file, cols, restval="")
        if not self.done:
            self.writer.writeheader()
        if not (self.done and os.path.isfile(self.settings_path)):
            with open(self.settings_path, "w") as f:
                json.dump(settings, f, indent=2)

    def _check_settings(self, settings: dict) -> None:
        """ValueError naming each option the csv was made with otherwise (a csv from before
        the settings file existed cannot be checked; it gets one now)."""
        try:
            with open(self.settings_path) as f:
                made = json.load(f)
        except FileNotFoundError:
            return
        changed = [f"--{k} {made.get(k)!r} (now {v!r})" for k, v in settings.items()
                   if made.get(k) != v]
        if changed:
            raise ValueError(f"{self.path!r} was scored with {'; '.join(changed)}: rerun with "
                             f"the options it was made with, or without --resume to start "
                             f"it again")

    def _keep_complete_rows(self) -> set[str]:
        with open(self.path, "rb") as f:
            text = f.read()
        complete = text[:text.rfind(b"\n") + 1]
        header = next(csv.reader([complete.decode().split("\n", 1)[0]]), None)
        if header is None:
            return set()
        if header != self.cols:   # before the cut below: a refused resume changes nothing
            raise ValueError(f"{self.path!r} has the columns {header}, not those of these "
                             f"--metrics {self.cols}: rerun with the --metrics it was made with, "
                             f"or without --resume to start it again")
        if complete != text:
            with open(self.path, "wb") as f:
                f.write(complete)
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


class ReferenceCache:
    """Each face's Reference between test.py runs, in one SQLite file (a kill loses at most the
    faces since the last commit). An entry is found by the hash of everything its numbers
    depend on (`settings`: the crop, degradation, metrics, library versions, ...) and the
    sha1 of the image file's bytes, so a changed setting or image is a miss, never a stale
    hit. path None: no cache. A file that cannot serve (not a cache, read-only, locked past
    the timeout, a full disk) is warned about once and the run goes on without it."""

    VERSION = 1   # bump when a Reference is computed differently
    TIMEOUT = 60  # seconds to wait for another test.py run's write to the same file

    def __init__(self, path: str | None, settings: dict):
        text = json.dumps({"version": self.VERSION, **settings}, sort_keys=True)
        self.settings = hashlib.sha1(text.encode()).hexdigest()
        self.db, self.path = None, path
        if path:
            try:
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
                self.db = sqlite3.connect(path, timeout=self.TIMEOUT)
            except (OSError, sqlite3.Error) as err:
                self._give_up(err)
            self._safely(lambda db: db.execute(
                "CREATE TABLE IF NOT EXISTS refs (settings TEXT, image TEXT, row TEXT, "
                "hr_code BLOB, hr_facenet BLOB, PRIMARY KEY (settings, image))"))

    def _give_up(self, err: Exception) -> None:
        advice = ("it is a folder: pass --eval_cache a file" if os.path.isdir(self.path) else
                  "delete it, or pass --eval_cache another file (or none)")
        warnings.warn(f"not using the evaluation cache {self.path!r} ({err}): {advice}",
                      stacklevel=3)
        if self.db is not None:
            self.db.close()
        self.db = None

    def _safely(self, use, default=None):
        """use(connection), or `default` once the cache is off or fails (then it is off)."""
        if self.db is None:
            return default
        try:
            return use(self.db)
        except sqlite3.Error as err:
            self._give_up(err)
            return default

    def get(self, digests: list[str]) -> dict[str, Reference]:
        marks = ",".join("?" * len(digests))
        found = self._safely(lambda db: db.execute(
            f"SELECT image, row, hr_code, hr_facenet FROM refs WHERE settings = ? AND image IN "
            f"({marks})", [self.settings, *digests]).fetchall(), []) if digests else []
        return {image: Reference(json.loads(row), _array(code, np.float64),
                                 _array(vector, np.float32))
                for image, row, code, vector in found}

    def put(self, digest: str, ref: Reference) -> None:
        """Keep one face's Reference (committed by commit())."""
        self._safely(lambda db: db.execute(
            "INSERT OR REPLACE INTO refs VALUES (?, ?, ?, ?, ?)",
            (self.settings, digest, json.dumps(ref.row), _blob(ref.hr_code, np.float64),
             _blob(ref.hr_facenet, np.float32))))

    def commit(self) -> None:
        self._safely(lambda db: db.commit())

    def close(self) -> None:
        self.commit()
        if self.db is not None:
            self.db.close()
            self.db = None


def _blob(x: np.ndarray | None, dtype) -> bytes | None:
    return None if x is None else np.ascontiguousarray(x, dtype).tobytes()


def _array(blob: bytes | None, dtype) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(blob, dtype).copy()


def reference_of(row: dict, hr_code: np.ndarray | None,
                 hr_facenet: np.ndarray | None) -> Reference:
    """A freshly scored face's Reference (from its whole csv row), for the cache."""
    return Reference({k: v for k, v in row.items() if is_reference_field(k)}, hr_code,
                     hr_facenet)
