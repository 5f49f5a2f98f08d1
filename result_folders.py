"""The one rule for result folders, used by test.py, enhance.py, prepare_data.py and export.py,
and how their outputs are named (output_stems):

    A result folder is never shared silently with the inputs or with another script's
    outputs; the files it already holds are kept or named in one line, never deleted.

A script marks each folder it writes to with MARKER, which names the script. A rerun of the same
script may write there again (replacing its own outputs of the same name); another script may
not, nor may any script write into a folder that holds files no run marked (the user's own), or
a folder that is, holds or lies inside one of its inputs (its outputs would become inputs).
"""
from __future__ import annotations

import glob
import os
import tempfile
from collections import Counter

import checkpoints

MARKER = ".eipnet_results"
LISTED = 3   # files named in a message


class FolderError(ValueError):
    """A result folder the rule refuses; the message is one line naming the option and folder."""


def overlaps(a: str, b: str) -> bool:
    """Whether one of the two paths is, or lies inside, the other."""
    a, b = os.path.realpath(a), os.path.realpath(b)
    return os.path.commonpath([a, b]) in (a, b)


def listed(names: list[str]) -> str:
    more = f" and {len(names) - LISTED} more" if len(names) > LISTED else ""
    return ", ".join(sorted(names)[:LISTED]) + more


def owner(path: str) -> str | None:
    """The script that marked `path`, if one did."""
    try:
        with open(os.path.join(path, MARKER)) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def output_stems(names: list[str]) -> dict[str, str]:
    """File name -> stem of its output files: the name without its extension, or the whole
    name where stems collide (face.jpg and face.png), so no result overwrites another."""
    stems = {n: os.path.splitext(n)[0] for n in names}
    while len(set(stems.values())) < len(stems):   # ends: the names themselves are unique
        counts = Counter(stems.values())
        stems = {n: n if counts[s] > 1 else s for n, s in stems.items()}
    return stems


def beside(prefix: str, name: str) -> str:
    """The default result folder `name` of a script run on the weights at `prefix`: in the run
    folder that holds them, one per checkpoint (G_weight.ckpt's is `name` itself), so scoring
    G_weight_ema.ckpt or a model.ckpt-N never replaces G_weight.ckpt's results."""
    folder, weights = os.path.split(prefix)
    return os.path.join(folder, name if weights == checkpoints.G_WEIGHT else f"{name}_{weights}")


def claim(path: str, script: str, option: str, inputs: dict[str, str] | None = None,
          legacy: tuple[str, ...] = ()) -> str:
    """Creates (or reuses) `path` as `script`'s result folder under the rule above and marks it;
    returns `path`. `inputs` maps an option to the file or folder it reads; `legacy` holds globs
    of files the script always writes, any of which marks its folders from before the marker.
    Raises FolderError with a one-line message naming what is shared and what to do."""
    for name, source in (inputs or {}).items():
        if os.path.isdir(source):
            shared = overlaps(path, source)
        else:   # one file is read: only its own folder would mix the outputs with it
            shared = os.path.realpath(path) == os.path.realpath(os.path.dirname(
                os.path.abspath(source)))
        if shared:
            raise FolderError(f"{option} {path!r} overlaps {name} {source!r}: its outputs would "
                              f"be read as inputs, or replace them; pass a folder outside it")
    if os.path.isdir(path):
        names = [n for n in os.listdir(path) if n != MARKER]
        found = owner(path)
        if found is None and names and any(glob.glob(os.path.join(glob.escape(path), pattern))
                                           for pattern in legacy):
            found = script
        if found not in (None, script):
            raise FolderError(f"{option} {path!r} holds the results of {found}: pass another "
                              f"folder")
        if found is None and names:
            raise FolderError(f"{option} {path!r} holds {len(names)} files that no {script} run "
                              f"wrote ({listed(names)}); they are kept: pass a new or empty "
                              f"folder")
    try:
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
        with open(os.path.join(path, MARKER), "w") as f:
            f.write(script + "\n")
    except OSError as err:   # read-only, a file of that name, a parent that is a file
        raise FolderError(f"cannot write to {option} {path!r} ({err.strerror or err}): pass a "
                          f"folder you can write to") from err
    return path
