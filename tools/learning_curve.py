"""A model's validation curve against images seen, across the runs that made it (issue 26):
each run folder's loss_log.txt and opt.txt, in training order. A run started with --pretrained
from the previous one continues its count from the iteration of the previous run's kept
G_weight.ckpt (its best validation of G), which is what --pretrained loads.

    python tools/learning_curve.py checkpoint/eipnet_lfw128 RUN [--every 2] [--png curve.png]

Prints a Markdown table (images seen, validation faces, PSNR of G and of its EMA where the run
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

from tools import zoo

VAL_LINE = re.compile(r"^val step (\d+): psnr ([\d.]+) dB(?:.*?, ema psnr ([\d.]+) dB)?")


@dataclass
class Point:
    run: int                     # index of its run on the command line
    images: int                  # images seen by the model scored, counting every earlier run
    val_faces: int
    psnr: float
    psnr_ema: float | None


def validations(log_path: str) -> dict[int, tuple[float, float | None]]:
    """{step: (psnr, ema psnr or None)} from a loss_log.txt; a step validated twice (a run
    resumed from a checkpoint before it) keeps its last line, the one that led on."""
    found = {}
    with open(log_path) as lines:
        for line in lines:
            m = VAL_LINE.match(line)
            if m:
                found[int(m[1])] = (float(m[2]), float(m[3]) if m[3] else None)
    return found


def curve(run_dirs: list[str]) -> list[Point]:
    """The validation points of the runs in order, on one images-seen axis."""
    points, start = [], 0
    for i, run in enumerate(run_dirs):
        opt = zoo.trained_options(run)
        if i and opt.get("pretrained", "None") == "None":
            sys.exit(f"{run} did not start from --pretrained; list only the runs that chain")
        found = validations(os.path.join(run, "loss_log.txt"))
        if not found:
            sys.exit(f"{run}/loss_log.txt has no 'val step' line: nothing to draw")
        batch, faces = int(opt["batchSize"]), int(opt["val_size"])
        points += [Point(i, start + batch * step, faces, psnr, ema)
                   for step, (psnr, ema) in sorted(found.items())]
        start += batch * max(found, key=lambda s: found[s][0])   # the kept G_weight.ckpt
    return points


def thinned(points: list[Point], every: int) -> list[Point]:
    """Every `every`-th validation of each run, and each run's last."""
    runs = [[p for p in points if p.run == r] for r in sorted({p.run for p in points})]
    return [p for part in runs for i, p in enumerate(part)
            if i % every == every - 1 or p is part[-1]]


def table(points: list[Point]) -> str:
    head = "| images seen (k) | val faces | PSNR, G | PSNR, EMA of G |\n|---|---|---|---|"
    rows = [f"| {p.images / 1000:.1f} | {p.val_faces} | {p.psnr:.2f} | "
            f"{'-' if p.psnr_ema is None else f'{p.psnr_ema:.2f}'} |" for p in points]
    return "\n".join([head] + rows)


def draw(points: list[Point], path: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6.4, 3.6), dpi=100)
    ax = fig.add_subplot()
    for faces in sorted({p.val_faces for p in points}):
        part = [p for p in points if p.val_faces == faces]
        ax.plot([p.images / 1000 for p in part], [p.psnr for p in part], ".-",
                label=f"G, {faces} val faces")
        ema = [p for p in part if p.psnr_ema is not None]
        if ema:
            ax.plot([p.images / 1000 for p in ema], [p.psnr_ema for p in ema], ".-",
                    label=f"EMA of G, {faces} val faces")
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
    p.add_argument("--every", type=int, default=1,
                   help="print every N-th validation of each run (and its last)")
    p.add_argument("--png", help="also draw the curve into this PNG")
    args = p.parse_args(argv)
    points = curve(args.runs)
    print(table(thinned(points, args.every)))
    if args.png:
        draw(points, args.png)
        print(f"curve drawn to {args.png}")
    return points


if __name__ == "__main__":
    main()
