"""A model's validation curve against images seen, across the runs that made it (issue 26):
each run folder's loss_log.txt and opt.txt, in training order. A run that fine-tuned the
previous one continues its count from the iteration it started at: the one its loss_log.txt
names ("generator initialised from ... (iteration N)", train.py since 2026-12-06), else the
previous run's best validation of G (what its G_weight.ckpt holds, which --pretrained loads
from a folder). Images seen count G's batches (the GAN phase's extra D batches are not counted).

    python tools/learning_curve.py checkpoint/eipnet_lfw128/run1_27k checkpoint/eipnet_lfw128 \
        RUN [--every 2] [--png curve.png]

Prints a Markdown table (images seen, --val_size, PSNR of G and of its EMA where the run
kept one); --png also draws it.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
import os
from pathlib import Path
import re
import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # `python tools/learning_curve.py` runs too

from options import opt_txt
from options.arg_types import positive

VAL_LINE = re.compile(r"^val step (\d+): psnr ([\d.]+) dB(?:.*?, ema psnr ([\d.]+) dB)?")
START_LINE = re.compile(r"^generator initialised from .* \(iteration (\d+)\)$")


@dataclass
class Point:
    run: int                     # index of its run on the command line
    images: int                  # images seen by the model scored, counting every earlier run
    val_size: int
    psnr: float
    psnr_ema: float | None


@dataclass
class Log:
    validations: dict[int, tuple[float, float | None]]   # step: (psnr, ema psnr or None)
    start: int | None                                     # the iteration it was initialised at


def read_log(log_path: str) -> Log:
    """A loss_log.txt's validations and starting iteration. A step validated twice (a run
    resumed from a checkpoint before it) keeps its last line, the one that led on."""
    found, start = {}, None
    with open(log_path) as lines:
        for line in lines:
            m, s = VAL_LINE.match(line), START_LINE.match(line.rstrip("\n"))
            if m:
                found[int(m[1])] = (float(m[2]), float(m[3]) if m[3] else None)
            elif s:
                start = int(s[1])
    return Log(found, start)


def curve(run_dirs: list[str]) -> list[Point]:
    """The validation points of the runs in order, on one images-seen axis; ValueError for a
    run with no validation."""
    points, offset, previous = [], 0, None
    for i, run in enumerate(run_dirs):
        log = read_log(os.path.join(run, "loss_log.txt"))
        if not log.validations:
            raise ValueError(f"{run}/loss_log.txt has no 'val step' line: nothing to draw")
        if previous is not None:   # previous: (its images offset, batch, validations)
            start = log.start if log.start is not None else max(
                previous[2], key=lambda s: previous[2][s][0])
            offset = previous[0] + previous[1] * start
        opt = opt_txt.read(run)
        batch, val_size = int(opt["batchSize"]), int(opt["val_size"])
        points += [Point(i, offset + batch * step, val_size, psnr, ema)
                   for step, (psnr, ema) in sorted(log.validations.items())]
        previous = (offset, batch, log.validations)
    return points


def thinned(points: list[Point], every: int) -> list[Point]:
    """Every `every`-th validation of each run, and each run's last."""
    runs = [[p for p in points if p.run == r] for r in sorted({p.run for p in points})]
    return [p for part in runs for i, p in enumerate(part)
            if i % every == every - 1 or p is part[-1]]


def table(points: list[Point]) -> str:
    head = "| images seen (k) | --val_size | PSNR, G | PSNR, EMA of G |\n|---|---|---|---|"
    rows = [f"| {p.images / 1000:.1f} | {p.val_size} | {p.psnr:.2f} | "
            f"{'-' if p.psnr_ema is None else f'{p.psnr_ema:.2f}'} |" for p in points]
    return "\n".join([head] + rows)


def draw(points: list[Point], path: str) -> None:
    """One line per run (and one for its EMA): a fine-tune may start before its parent's end."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6.4, 3.6), dpi=100)
    ax = fig.add_subplot()
    for run in sorted({p.run for p in points}):
        part = [p for p in points if p.run == run]
        name = f"run {run + 1} ({part[0].val_size} val faces)"
        ax.plot([p.images / 1000 for p in part], [p.psnr for p in part], ".-", label=f"{name}, G")
        ema = [p for p in part if p.psnr_ema is not None]
        if ema:
            ax.plot([p.images / 1000 for p in ema], [p.psnr_ema for p in ema], ".-",
                    label=f"{name}, EMA of G")
    ax.set_xlabel("images seen (k)")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    FigureCanvasAgg(fig).print_png(path)


def main(argv=None) -> list[Point]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run folders, each with loss_log.txt and opt.txt, "
                                           "in training order")
    p.add_argument("--every", type=positive, default=1,
                   help="print every N-th validation of each run (and its last)")
    p.add_argument("--png", help="also draw the curve into this PNG")
    args = p.parse_args(argv)
    try:
        points = curve(args.runs)
    except (OSError, ValueError, KeyError) as err:
        sys.exit(f"error: {err}")
    print(table(thinned(points, args.every)))
    if args.png:
        draw(points, args.png)
        print(f"curve drawn to {args.png}")
    return points


if __name__ == "__main__":
    main()
