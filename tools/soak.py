"""Soak test of train.py's resume (not a CI test; about 10 minutes on 2 cores): kill train.py
with SIGKILL at random moments, during start-up, training and saves, --rounds times in a
row, resuming with --continue_train each time. After every kill it checks that
- the `checkpoint` index points at a complete checkpoint (its index and all its data read);
- the iteration to resume is at most --save_freq behind the last one reached, and the next
  round resumes from it, so the iteration never goes back by more than --save_freq;
- the checkpoint files hold at most --max_to_keep checkpoints plus the one being written
  (leftovers of earlier kills are gone) and G_weight.ckpt reads completely;
and at the end that a last run finishes, leaving --max_to_keep checkpoints and no leftovers,
and that test.py restores both G_weight.ckpt and the newest full checkpoint.

    python tools/soak.py --rounds 20 --work /tmp/soak
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import random
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # `python tools/soak.py` runs too

import checkpoints
from tf1 import tf

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared" / "data" / "lfw128"
MODES = ("training", "save", "start-up")   # what the kill of round r interrupts: MODES[r % 3]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--work", default="/tmp/soak", help="run folder, logs and results go here")
    p.add_argument("--train_path", default=str(LFW / "train"))
    p.add_argument("--test_path", default=str(LFW / "val"))
    p.add_argument("--save_freq", type=int, default=2)
    p.add_argument("--max_to_keep", type=int, default=2)
    p.add_argument("--max_delay", type=float, default=10.0,
                   help="longest wait (s) before a kill once training is under way")
    p.add_argument("--startup_delay", type=float, default=15.0,
                   help="longest wait (s) before a kill from the launch (imports, tidying, "
                        "restoring)")
    p.add_argument("--timeout", type=float, default=180.0, help="longest wait (s) for a round")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


class Soak:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.work = Path(args.work)
        self.run = self.work / "run"
        self.rng = random.Random(args.seed)
        self.rounds: list[dict] = []

    def command(self, niter: int, resume: bool) -> list[str]:
        a = self.args
        return [sys.executable, str(ROOT / "train.py"), "--train_path", a.train_path,
                "--test_path", a.test_path, "--checkpoint_path", str(self.work), "--save_path",
                "run", "--batchSize", "2", "--val_size", "4", "--losses", "rgb,edge,lc",
                "--niter", str(niter), "--save_freq", str(a.save_freq), "--val_freq",
                str(2 * a.save_freq), "--max_to_keep", str(a.max_to_keep), "--print_freq", "1",
                "--loader_threads", "1"] + (["--continue_train"] if resume else [])

    def start(self, niter: int, resume: bool, log: Path) -> subprocess.Popen:
        """train.py in a process group of its own, as a shell with `set -m` starts it."""
        with open(log, "w") as out:
            return subprocess.Popen(self.command(niter, resume), cwd=ROOT, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def steps(self) -> list[int]:
        path = self.run / "loss_log.txt"
        if not path.exists():
            return []
        return [int(m[1]) for m in re.finditer(r"^step (\d+):", path.read_text(), re.M)]

    def wait(self, proc: subprocess.Popen, ready, log: Path) -> None:
        end = time.time() + self.args.timeout
        while not ready():
            if proc.poll() is not None or time.time() > end:
                raise RuntimeError(f"train.py ended or stalled (exit {proc.poll()}); see {log}")
            time.sleep(0.005)

    def kill_round(self, r: int) -> dict:
        mode = MODES[r % len(MODES)]
        logged = len(self.steps())
        log = self.work / f"round{r:02d}.log"
        proc = self.start(10**6, resume=r > 0, log=log)
        if mode == "start-up":
            time.sleep(self.rng.uniform(0, self.args.startup_delay))
        else:
            self.wait(proc, lambda: len(self.steps()) > logged, log)   # training under way
            if mode == "training":
                time.sleep(self.rng.uniform(0, self.args.max_delay))
            else:
                self.wait(proc, lambda: partial_files(self.run), log)
                time.sleep(self.rng.uniform(0, 0.05))
        assert proc.poll() is None, f"train.py ended by itself; see {log}"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return {"round": r, "mode": mode, **self.check_after_kill()}

    def check_after_kill(self) -> dict:
        a, run = self.args, self.run
        resume, damaged = checkpoints.newest_complete(str(run))
        assert not damaged, damaged
        state = tf.train.get_checkpoint_state(str(run)) if resume else None
        pointed = state and os.path.join(run, state.model_checkpoint_path)
        assert not resume or checkpoints.damage(pointed) is None, f"index points at {pointed}"
        reached = max(self.steps()[-1:], default=0)
        resume_step = checkpoints.step_of(resume) if resume else 0
        assert reached - resume_step <= a.save_freq, (reached, resume_step)
        full = checkpoints.full_checkpoints(str(run))
        partial = partial_files(run)
        size = checkpoint_bytes(run, resume) if resume else 0
        used = sum(f.stat().st_size for f in run.glob(checkpoints.FULL_PREFIX + "*"))
        # the saver deletes the oldest checkpoint after writing a new one
        assert len(full) <= a.max_to_keep + 1, full
        assert used <= (a.max_to_keep + 1) * size or not resume, (used, size)
        saves = {f.split(".data-")[0].split(".index")[0] for f in partial
                 if not f.startswith("checkpoint.tmp")}
        assert len(saves) <= 1, f"leftovers of earlier kills: {partial}"
        g_weight = str(run / checkpoints.G_WEIGHT)
        moving = os.path.exists(g_weight + checkpoints.STAGED + ".index")   # finished at start
        assert (not os.path.exists(g_weight + ".index") or moving
                or checkpoints.damage(g_weight) is None), "G_weight.ckpt is damaged"
        return {"reached": reached, "resume_from": resume_step,
                "index": pointed and os.path.basename(pointed), "full_checkpoints": len(full),
                "partial_files": partial, "checkpoint_bytes": used,
                "bytes_per_checkpoint": size}

    def check_resumed(self, r: int, previous: dict) -> None:
        """The round after a kill resumed (if it got that far) from the checkpoint the kill
        left to resume."""
        log = (self.work / f"round{r:02d}.log").read_text()
        resumed = re.findall(r"^resumed from .*model\.ckpt-(\d+)$", log, re.M)
        assert resumed in ([], [str(previous["resume_from"])]), (r, resumed, previous)

    def finish(self) -> dict:
        """A last resume that ends by itself, then test.py on its weights."""
        a, run = self.args, self.run
        niter = max(self.steps()[-1:], default=0) + 2 * a.save_freq
        log = self.work / "final.log"
        proc = self.start(niter, resume=True, log=log)
        assert proc.wait(timeout=a.timeout) == 0, log.read_text()[-2000:]
        full = checkpoints.full_checkpoints(str(run))
        assert len(full) <= a.max_to_keep and not partial_files(run), os.listdir(run)
        assert checkpoints.step_of(full[0]) == niter
        faces = self.work / "faces"
        faces.mkdir(exist_ok=True)
        for path in sorted(Path(a.test_path).iterdir())[:4]:
            (faces / path.name).write_bytes(path.read_bytes())
        scores = {}
        for weights in (str(run), full[0]):
            out = self.work / f"result_{Path(weights).name}"
            test = subprocess.run([sys.executable, str(ROOT / "test.py"), "--weight_path",
                                   weights, "--test_path", str(faces), "--result_dir", str(out),
                                   "--metrics", "psnr", "--no_figures"],
                                  cwd=ROOT, capture_output=True, text=True, timeout=a.timeout)
            assert test.returncode == 0, test.stdout[-2000:] + test.stderr[-2000:]
            summary = json.loads((out / "summary.json").read_text())
            assert summary["metrics"]["psnr"]["n"] == 4
            scores[Path(weights).name] = summary["metrics"]["psnr"]
        return {"final_iteration": niter, "full_checkpoints": len(full), "test_psnr": scores}

    def main(self) -> dict:
        self.work.mkdir(parents=True, exist_ok=False)
        tic = time.time()
        for r in range(self.args.rounds):
            result = self.kill_round(r)
            if r:
                self.check_resumed(r, self.rounds[-1])
            self.rounds.append(result)
            print(json.dumps(result), flush=True)
        report = {"rounds": self.rounds, "final": self.finish(), **summary(self.rounds),
                  "seconds": round(time.time() - tic)}
        (self.work / "soak.json").write_text(json.dumps(report, indent=2))
        return report


def partial_files(run: Path) -> list[str]:
    """Files of a save under way: TensorFlow's temporary files, a staged G_weight.ckpt, a
    full checkpoint's data file without its index."""
    return sorted(f for f in os.listdir(run) if checkpoints.is_leftover(f, str(run))
                  or f.startswith(checkpoints.G_WEIGHT + checkpoints.STAGED))


def checkpoint_bytes(run: Path, prefix: str) -> int:
    return sum(f.stat().st_size for f in run.glob(Path(prefix).name + ".*"))


def summary(rounds: list[dict]) -> dict:
    back = [r["reached"] - r["resume_from"] for r in rounds]
    return {"kills": len(rounds), "kills_by_mode": {m: sum(r["mode"] == m for r in rounds)
                                                     for m in MODES},
            "kills_leaving_a_partial_save": sum(bool(r["partial_files"]) for r in rounds),
            "iterations_reached": max(r["reached"] for r in rounds),
            "most_iterations_lost": max(back),
            "most_checkpoint_bytes": max(r["checkpoint_bytes"] for r in rounds),
            "bytes_per_checkpoint": max(r["bytes_per_checkpoint"] for r in rounds)}


if __name__ == "__main__":
    result = Soak(parse_args()).main()
    print(json.dumps({k: v for k, v in result.items() if k != "rounds"}, indent=2))
