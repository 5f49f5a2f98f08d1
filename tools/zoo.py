"""The README's table of the model zoo (issue 25): every model shipped in checkpoint/ scored by
test.py on all faces of --test_path, each with the degradation and scale it was trained for
(read from its opt.txt and checkpoint), PSNR and SSIM on RGB, beside the bicubic upscale of
the same LR faces; with its parameters, GMACs and images/s at batch 16 on this CPU.

    python tools/zoo.py [--test_path ../shared/data/lfw128/val] [--lpips_weights FILE]

Pause any other heavy work while it runs: the speed column is timed. Each model's full
test.py results stay in --result_root/<weights folder>.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # `python tools/zoo.py` runs too

import data
from options import opt_txt
import test as test_script
from networks import generators

METRICS = "psnr,ssim,brisque,tar"
HEAD = ["system", "weights", "LR made by", "PSNR", "SSIM", "LPIPS", "BRISQUE", "TAR d=0.5",
        "TAR d=0.6", "params (M)", "GMACs", "img/s, batch 16"]


def shipped(root: str = "checkpoint") -> list[str]:
    """The weight folders of `root` with a generator and the opt.txt of its run, EIPNet's
    default first."""
    folders = [os.path.join(root, d) for d in sorted(os.listdir(root))
               if os.path.isfile(os.path.join(root, d, "G_weight.ckpt.index"))
               and os.path.isfile(os.path.join(root, d, "opt.txt"))]
    return sorted(folders, key=lambda f: not f.endswith("eipnet_lfw128"))


def score(folder: str, args) -> dict:
    """test.py's summary of the model in `folder` on args.test_path, with --fps."""
    trained = opt_txt.read(folder)
    # runs from before --degradation existed trained on the bilinear chain
    argv = ["--model", trained["model"], "--weight_path", folder, "--test_path", args.test_path,
            "--degradation", trained.get("degradation", "bilinear_chain"), "--metrics", METRICS, "--fps",
            "--no-y_channel",   # RGB for every row (JEANet's test.py default is Y, its paper's)
            "--no_figures", "--result_dir", os.path.join(args.result_root, os.path.basename(folder))]
    if args.lpips_weights:
        argv += ["--lpips_weights", args.lpips_weights]
    return test_script.main(argv)


def cells(means: dict, tar: dict, method: str) -> list[str]:
    """PSNR .. TAR d=0.6 of `method` ("sr" or "bicubic"), "-" where not measured."""
    def get(metric: str, digits: int) -> str:
        return test_script.fmt(means.get(metric, {}).get(method), digits)
    tars = {row["threshold"]: row[method] for row in tar.get("algorithm", [])}
    return [get("psnr", 2), get("ssim", 4), get("lpips", 4), get("brisque", 2),
            *(test_script.fmt(None if tars.get(d) is None else 100 * tars[d], 1)
              for d in (0.5, 0.6))]


def protocol(summary: dict) -> str:
    size = data.lr_size(summary["scale"])
    return f"{summary['degradation'].replace('_', ' ')}, {size} px"


def order(summaries: dict[str, dict]) -> dict[str, int]:
    """Each protocol's rank by its first model in `summaries`."""
    ranks: dict[str, int] = {}
    for s in summaries.values():
        ranks.setdefault(protocol(s), len(ranks))
    return ranks


def table(summaries: dict[str, dict]) -> str:
    """One bicubic row per protocol, before its models; HR's BRISQUE once."""
    lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    first = next(iter(summaries.values()))
    hr = test_script.fmt(first["metrics"]["brisque"]["hr"], 2)
    lines.append("| HR | - | - | - | - | - | " + hr + " | - | - | - | - | - |")
    seen, rank = set(), order(summaries)
    # the models grouped by protocol (in order of first appearance), each under its bicubic
    for folder, s in sorted(summaries.items(), key=lambda kv: rank[protocol(kv[1])]):
        if protocol(s) not in seen:
            seen.add(protocol(s))
            lines.append("| " + " | ".join(["Bicubic", "-", protocol(s),
                                             *cells(s["metrics"], s["tar"], "bicubic"),
                                             "-", "-", "-"]) + " |")
        cx = s["complexity"]
        title = generators.GENERATORS[s["model"]].title + (" 4x" if s["scale"] == 4 else "")
        lines.append("| " + " | ".join([title, f"`{folder}`", protocol(s),
                                         *cells(s["metrics"], s["tar"], "sr"),
                                         f"{cx['params'] / 1e6:.2f}", f"{cx['gmacs']:.2f}",
                                         test_script.fmt(cx["fps_batch16"], 1)]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    from tf1 import machine
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test_path", default="../shared/data/lfw128/val")
    parser.add_argument("--checkpoints", default="checkpoint", help="where the zoo ships")
    parser.add_argument("--result_root", default="results/zoo",
                        help="test.py's results per model go to <this>/<weights folder>")
    parser.add_argument("--lpips_weights", default=None, help="adds LPIPS (test.py's option)")
    args = parser.parse_args(argv)
    summaries = {folder: score(folder, args) for folder in shipped(args.checkpoints)}
    text = f"{machine()}; all faces of {args.test_path}\n\n{table(summaries)}"
    print(text)
    return text


if __name__ == "__main__":
    main()
