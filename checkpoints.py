"""Finding, inspecting, restoring and safely writing checkpoints (ours and the authors')."""
from __future__ import annotations

import glob
import json
import os
import re
import signal
from contextlib import contextmanager

from tf1 import tf

G_WEIGHT = "G_weight.ckpt"   # generator-only release checkpoint, the authors' file name
G_WEIGHT_EMA = "G_weight_ema.ckpt"   # the same layout, G's moving average (--ema_decay)
KEPT_GENERATORS = (G_WEIGHT, G_WEIGHT_EMA)   # saved staged, then moved into place (tidy)
FULL_PREFIX = "model.ckpt"   # full training state (G, D, optimiser slots, global step)
STAGED = ".next"             # G_WEIGHT + STAGED: a new G_WEIGHT written in full before it moves


def kept_record(g_weight: str = G_WEIGHT) -> str:
    """The file naming the validation a kept generator holds: {"iteration": N, "val_psnr": dB}."""
    return g_weight.replace(".ckpt", ".json")


KEPT = kept_record()
FULL_INDEX = re.compile(re.escape(FULL_PREFIX) + r"-(\d+)\.index")
# what marks a folder as holding a run, so that a new run never writes over it
RUN_FILE = re.compile("|".join([re.escape(FULL_PREFIX) + r"-\d+\.",
                                 *map(re.escape, KEPT_GENERATORS), r"opt\.txt$", r"checkpoint$"]))
DESIGN = "design"   # collection and variable name of a generator's recorded design string


def resolve(path: str, option: str = "--weight_path") -> str:
    """A checkpoint prefix from a folder (its G_weight.ckpt, else its newest full checkpoint)
    or a prefix; raises FileNotFoundError naming the path and the fix (`option`: the flag that
    named it)."""
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, G_WEIGHT + ".index")):
            return os.path.join(path, G_WEIGHT)
        full = full_checkpoints(path)
        if full:
            return full[0]
    elif os.path.exists(path + ".index"):
        return path
    raise FileNotFoundError(
        f"no checkpoint at {path!r}: pass {option} a folder holding {G_WEIGHT} "
        f"(for example the shipped checkpoint/eipnet_lfw128, or a folder where you put the "
        f"authors' released CelebA G_weight.ckpt from their EIPNet repository) or a checkpoint "
        f"prefix")


def variable_shapes(prefix: str) -> dict[str, list[int]]:
    return dict(tf.train.list_variables(prefix))


def tail_of(shapes: dict[str, list[int]]) -> str:
    """'released' if a checkpoint's last conv generator/RGB is 1x1, else 'paper' (3x3);
    KeyError if it has none."""
    return "released" if shapes["generator/RGB/w"][0] == 1 else "paper"


def generator_variables(design: bool = True) -> list[tf.Variable]:
    """The generator's weights, its batch-norm moving averages (JEANet, SRResNet, the
    prior-guided residual blocks) and, with `design`, the prior-guided generator/design; no
    optimiser slots. A fine-tuning start leaves the design out: the new run's options wrote
    its own."""
    moving = tf.get_collection(tf.GraphKeys.MOVING_AVERAGE_VARIABLES, "generator")
    extra = tf.get_collection(DESIGN, "generator") if design else []
    # ExponentialMovingAverage (--ema_decay) also lists the weights it averages as moving
    return list(dict.fromkeys(tf.trainable_variables("generator") + moving + extra))


def generator_saver(max_to_keep: int = 1, design: bool = True) -> tf.train.Saver:
    return tf.train.Saver(generator_variables(design), max_to_keep=max_to_keep)


def mismatches(variables: list[tf.Variable], prefix: str) -> list[str]:
    """Why `variables` cannot be restored from `prefix`: each one the checkpoint lacks or holds
    with another shape, by name."""
    shapes = variable_shapes(prefix)
    found = []
    for v in variables:
        name, shape = v.op.name, v.shape.as_list()
        if name not in shapes:
            found.append(f"{name} {shape} is missing")
        elif shapes[name] != shape:
            found.append(f"{name} is {shapes[name]} there, {shape} here")
    return found


def restorable(variables: list[tf.Variable], prefix: str) -> list[tf.Variable]:
    """Those of `variables` that `prefix` holds under the same name and shape."""
    shapes = variable_shapes(prefix)
    return [v for v in variables if shapes.get(v.op.name) == v.shape.as_list()]


def intact(prefix: str, option: str = "--weight_path") -> str:
    """`prefix` if its index and data read completely, else ValueError naming the file and
    the fix (`option`: the flag that named the checkpoint)."""
    problem = damage(prefix)
    if problem and os.path.exists(prefix + STAGED + ".index"):
        raise ValueError(f"{problem}: a kill cut its save short; train.py --continue_train on "
                         f"its run folder finishes the save")
    if problem:
        raise ValueError(f"{problem}: restore it from a copy, or pass {option} another "
                         f"checkpoint")
    return prefix


def first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def damage(prefix: str) -> str | None:
    """None if the checkpoint at `prefix` reads completely (its index, and every tensor in its
    data file, checksums included); else what is wrong, naming the file."""
    try:
        reader = tf.train.NewCheckpointReader(prefix)
    except Exception as err:   # TF raises a bare OpError for an index that is not an sstable
        return f"{prefix}.index is missing or damaged ({first_line(err)})"
    data = sorted(glob.glob(glob.escape(prefix) + ".data-*")) or [f"{prefix}.data-00000-of-00001"]
    try:
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as err:   # a short data file raises IndexError, a bad checksum OpError
        return f"{', '.join(data)} is missing or damaged ({first_line(err)})"
    return None


def full_checkpoints(run_dir: str) -> list[str]:
    """Prefixes of the full checkpoints that have an index in `run_dir`, newest first. Read
    from the files, not the `checkpoint` index, which may be damaged or point elsewhere."""
    names = os.listdir(run_dir) if os.path.isdir(run_dir) else []
    steps = [int(m[1]) for m in map(FULL_INDEX.fullmatch, names) if m]
    return [os.path.join(run_dir, f"{FULL_PREFIX}-{s}") for s in sorted(steps, reverse=True)]


def newest_complete(run_dir: str) -> tuple[str | None, list[str]]:
    """The newest full checkpoint in `run_dir` that reads completely, and what is wrong with
    each newer one."""
    damaged = []
    for prefix in full_checkpoints(run_dir):
        problem = damage(prefix)
        if problem is None:
            return prefix, damaged
        damaged.append(problem)
    return None, damaged


def run_files(run_dir: str) -> list[str]:
    """The files in `run_dir` that a new run would overwrite: checkpoints of any kind (however
    damaged), the `checkpoint` index and opt.txt."""
    if not os.path.isdir(run_dir):
        return []
    return sorted(f for f in os.listdir(run_dir) if RUN_FILE.match(f))


def step_of(prefix: str) -> int:
    return int(prefix.rsplit("-", 1)[1])


def is_leftover(name: str, run_dir: str) -> bool:
    """What a kill during a save leaves: TensorFlow's temporary files, or a data file whose
    index was never written (of a full checkpoint or of a staged G_weight)."""
    if (".tempstate" in name or name.startswith("checkpoint.tmp")
            or name in {kept_record(g) + STAGED for g in KEPT_GENERATORS}):
        return True
    prefix, sep, _ = name.partition(".data-")
    ours = (re.fullmatch(re.escape(FULL_PREFIX) + r"-\d+", prefix)
            or prefix in {g + STAGED for g in KEPT_GENERATORS})
    return bool(sep and ours and not os.path.exists(os.path.join(run_dir, prefix + ".index")))


def tidy(run_dir: str, resume: str | None, max_to_keep: int) -> tuple[list[str], list[str]]:
    """At a resume: finish a kept G's move a kill cut short, delete leftovers of killed saves
    and the full checkpoints older than the newest `max_to_keep` up to `resume` (a run that
    was never stopped would have deleted them; 0 keeps all, as TensorFlow's Saver). Returns
    (the full checkpoints kept, oldest first; what was deleted or moved, one note each)."""
    notes = [f"finished moving the new {g} into place" for g in KEPT_GENERATORS
             if finish_kept_move(run_dir, g)]
    done = [p for p in full_checkpoints(run_dir) if resume and step_of(p) <= step_of(resume)]
    kept = done[:max_to_keep] if max_to_keep else done
    surplus = [f for p in done[len(kept):] for f in glob.glob(glob.escape(p) + ".*")]
    for name in sorted(os.listdir(run_dir)):
        path = os.path.join(run_dir, name)
        if path in surplus or is_leftover(name, run_dir):
            os.remove(path)
            notes.append(f"removed {path}")
    return kept[::-1], notes


def finish_move(staged: str, prefix: str) -> bool:
    """Move the complete checkpoint `staged` (TensorFlow writes its index last) over `prefix`:
    data files first, then the index. Also finishes a move that was cut short."""
    if not os.path.exists(staged + ".index"):
        return False
    for data in glob.glob(glob.escape(staged) + ".data-*"):
        os.replace(data, prefix + data[len(staged):])
    os.replace(staged + ".index", prefix + ".index")
    return True


@contextmanager
def signal_handlers(handler):
    """SIGINT and SIGTERM go to `handler` while the block runs."""
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, before in previous.items():
            signal.signal(s, before)


@contextmanager
def signals_deferred():
    """Hold SIGINT and SIGTERM back until the block is done, so a move is never cut short
    by Ctrl-C (Python runs signal handlers in the main thread, between any two lines)."""
    held = []
    with signal_handlers(lambda signum, frame: held.append(signum)):
        yield
    for s in held:
        signal.raise_signal(s)


def replace_kept(saver: tf.train.Saver, sess: tf.Session, run_dir: str, g_weight: str,
                 iteration: int, val_psnr: float) -> None:
    """Save `saver`'s generator as `g_weight` with its kept_record, both staged, then moved into
    place record first (finish_kept_move); Ctrl-C waits. Killed between its two renames,
    TensorFlow's in-place save would leave new data beside the old index for good; here a kill
    leaves a staged save, deleted at the resume, or a move cut short, which `tidy` completes.
    So the record always names the G on disk or the one being moved in. The graph's best PSNR
    reaches disk only with the next full checkpoint: the record is what a resume after a kill
    in between must not fall below."""
    with signals_deferred():
        with open(os.path.join(run_dir, kept_record(g_weight)) + STAGED, "w") as f:
            json.dump({"iteration": iteration, "val_psnr": val_psnr}, f)
        saver.save(sess, os.path.join(run_dir, g_weight + STAGED), write_meta_graph=False,
                   write_state=False)
        finish_kept_move(run_dir, g_weight)


def finish_kept_move(run_dir: str, g_weight: str) -> bool:
    """Move a staged `g_weight` save whose index was written into place: its staged record
    first, then the checkpoint (finish_move). False if there was none."""
    staged = os.path.join(run_dir, g_weight + STAGED)
    if not os.path.exists(staged + ".index"):
        return False
    record = os.path.join(run_dir, kept_record(g_weight))
    if os.path.exists(record + STAGED):
        os.replace(record + STAGED, record)
    return finish_move(staged, os.path.join(run_dir, g_weight))


def kept(run_dir: str, g_weight: str = G_WEIGHT) -> dict | None:
    """The run's kept_record of `g_weight`, {"iteration": int, "val_psnr": float}; None without
    a readable one or without the checkpoint."""
    if not os.path.exists(os.path.join(run_dir, g_weight + ".index")):
        return None
    try:
        with open(os.path.join(run_dir, kept_record(g_weight))) as f:
            record = json.load(f)
        return {"iteration": int(record["iteration"]), "val_psnr": float(record["val_psnr"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def kept_psnr(run_dir: str, g_weight: str = G_WEIGHT) -> float:
    """The validation PSNR of the run's `g_weight` (kept); -inf where it has none."""
    record = kept(run_dir, g_weight)
    return float("-inf") if record is None else record["val_psnr"]


def iteration_of(prefix: str) -> int | None:
    """The training iteration whose generator `prefix` holds: N of a model.ckpt-N, the recorded
    one of a kept G (G_weight.json); None where nothing says (the authors' release, or the
    first shipped model, which kept no record)."""
    name = os.path.basename(prefix)
    if name.startswith(FULL_PREFIX + "-"):
        return step_of(prefix)
    record = kept(os.path.dirname(prefix), name) if name in KEPT_GENERATORS else None
    return None if record is None else record["iteration"]
