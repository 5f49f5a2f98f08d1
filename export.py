"""Export a trained generator for deployment, each format with a JSON beside it:

    python export.py --weight_path checkpoint/eipnet_lfw128 --output export/eipnet
    python export.py --format onnx --dtype uint8 --output out
    python export.py --model jeanet --weight_path checkpoint/MY_JEANET_RUN --side_outputs ...

- savedmodel/  SavedModel, tag "serve", signature "serving_default": lr -> sr (+ side outputs)
- frozen.pb    frozen GraphDef (facenet's freeze_graph.py pattern): input node "lr",
               output nodes "sr" (+ side outputs); import it with tf.import_graph_def
- model.onnx   ONNX via tf2onnx (--opset, default 17), the same tensor names
- <format>.json  model, source checkpoint, tail, architecture, input/output names, shapes,
               dtypes and value ranges

The graph is test.py's: the architecture (EIPNet's tail, the edge blocks, JEANet's shortcuts)
is read from the checkpoint, and the weights are frozen into constants. lr is [N,16,16,3] RGB
0..255 with a free batch N ([N,32,32,3] for an EIPNet trained with --scale 4). With --dtype float32, sr is the generator's float output, not
clipped; with --dtype uint8, sr is clipped and rounded in the graph, as test.py saves it.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from typing import NamedTuple

import checkpoints
import data
from networks import generators, restored
from options.export_options import FORMATS, ExportOptions
import result_folders
from tf1 import tf

INPUT, OUTPUT = "lr", "sr"
SIGNATURE = "serving_default"
FILES = {"savedmodel": "savedmodel", "frozen": "frozen.pb", "onnx": "model.onnx"}
RANGES = {
    ("lr", "float32"): "RGB 0..255 (the LR face as read, not normalised)",
    ("lr", "uint8"): "RGB 0..255",
    ("sr", "float32"): "RGB on the 0..255 scale, not clipped: clip to 0..255 and round to show",
    ("sr", "uint8"): "RGB 0..255, clipped and rounded in the graph",
    ("edge", "float32"): "edge map on the 0..255 scale of the Canny targets, not clipped",
    ("coarse", "float32"): "the coarse SR, RGB on the 0..255 scale, not clipped",
    ("parsing", "float32"): "11 face-parsing maps, 0..1",
}


class Serving(NamedTuple):
    graph_def: tf.GraphDef          # input node INPUT, an output node per name of `outputs`
    dtype: str                      # of lr and sr
    input: list                     # lr's static shape, None for the batch
    outputs: dict[str, list]        # name -> static shape, None for the batch
    meta: dict                      # model, checkpoint, architecture


def named_outputs(out, side_outputs: bool) -> dict[str, tf.Tensor]:
    """sr and, with side_outputs, the model's other outputs under test.py's tags."""
    return {OUTPUT: out.rgb, **(restored.side_outputs(out) if side_outputs else {})}


def freeze(opt, prefix: str) -> tuple[tf.GraphDef, str, dict[str, tf.Tensor]]:
    """test.py's generator restored from `prefix`, its variables folded into constants: the
    GraphDef, its float input's name and the named outputs (tensors of test.py's graph)."""
    gen = restored.Generator(opt, prefix)
    named = named_outputs(gen.out, opt.side_outputs)
    frozen = tf.graph_util.convert_variables_to_constants(
        gen.sess, gen.graph.as_graph_def(), [t.op.name for t in named.values()])
    gen.close()
    return frozen, gen.lr.name, named


def serving_graph(opt, prefix: str) -> Serving:
    """The frozen generator behind an input node `lr` of opt.dtype and output nodes named
    sr, edge32, ...; nothing else is left in the graph."""
    frozen, lr_name, named = freeze(opt, prefix)
    architecture = generators.GENERATORS[opt.model].architecture(prefix)
    size = data.lr_size(architecture.get("scale", 8))
    with tf.Graph().as_default() as graph:
        lr = tf.placeholder(opt.dtype, [None, size, size, 3], INPUT)
        got = tf.import_graph_def(frozen, {lr_name: tf.cast(lr, tf.float32)},
                                  [t.name for t in named.values()], name=opt.model)
        for name, t in zip(named, got):
            if name == OUTPUT and opt.dtype == "uint8":   # as metrics.to_uint8: rint, clip
                t = tf.cast(tf.clip_by_value(tf.round(t), 0, 255), tf.uint8)
            tf.identity(t, name=name)
    shapes = {name: [None] + t.shape.as_list()[1:] for name, t in named.items()}
    meta = {"model": opt.model, "title": generators.GENERATORS[opt.model].title,
            "source_checkpoint": os.path.abspath(prefix), "tail": architecture.get("tail"),
            "architecture": architecture}
    return Serving(tf.graph_util.extract_sub_graph(graph.as_graph_def(), list(named)),
                   opt.dtype, [None, size, size, 3], shapes, meta)


def value_range(name: str, dtype: str) -> str:
    return RANGES[("edge" if name.startswith("edge") else name, dtype)]


def tensor_info(serving: Serving) -> dict:
    """Input and outputs: dtype, shape and value range of each, by name."""
    def info(name: str, shape: list, dtype: str) -> dict:
        return {"dtype": dtype, "shape": shape, "range": value_range(name, dtype)}
    return {"inputs": {INPUT: info(INPUT, serving.input, serving.dtype)},
            "outputs": {name: info(name, shape, serving.dtype if name == OUTPUT else "float32")
                        for name, shape in serving.outputs.items()}}


def write_frozen(serving: Serving, path: str, opt) -> dict:
    with open(path, "wb") as f:
        f.write(serving.graph_def.SerializeToString())
    return {"load": "tf.import_graph_def; feed 'lr:0', fetch 'sr:0'"}


def write_savedmodel(serving: Serving, path: str, opt) -> dict:
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        tf.import_graph_def(serving.graph_def, name="")
        tensor = lambda name: graph.get_tensor_by_name(name + ":0")
        signature = tf.saved_model.predict_signature_def(
            {INPUT: tensor(INPUT)}, {name: tensor(name) for name in serving.outputs})
        builder = tf.saved_model.Builder(path)
        builder.add_meta_graph_and_variables(sess, [tf.saved_model.SERVING],
                                             signature_def_map={SIGNATURE: signature},
                                             strip_default_attrs=True)
        builder.save()
    return {"tags": [tf.saved_model.SERVING], "signature": SIGNATURE,
            "load": "tf.saved_model.load(path).signatures['serving_default'](lr=...)['sr']"}


def write_onnx(serving: Serving, path: str, opt) -> dict:
    import onnx
    import tf2onnx
    names = [INPUT, *serving.outputs]
    proto, _ = tf2onnx.convert.from_graph_def(
        serving.graph_def, input_names=[f"{INPUT}:0"],
        output_names=[f"{name}:0" for name in serving.outputs], opset=opt.opset,
        tensors_to_rename={f"{name}:0": name for name in names})
    for value in [*proto.graph.input, *proto.graph.output]:   # tf2onnx names it unk__N
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    onnx.save(proto, path)
    return {"opset": opt.opset, "tf2onnx": tf2onnx.__version__,
            "load": "onnxruntime.InferenceSession(path).run(None, {'lr': ...})"}


WRITERS = {"savedmodel": write_savedmodel, "frozen": write_frozen, "onnx": write_onnx}


def checked_formats(formats: list[str]) -> list[str]:
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise ValueError(f"unknown --format {unknown or formats}: choose from {','.join(FORMATS)}")
    return formats


# what tf.saved_model.Builder writes into its folder; anything else there is someone else's
SAVEDMODEL_FILES = ("saved_model.pb", "fingerprint.pb", "variables", "assets")


def foreign_files(out_dir: str, formats: list[str]) -> list[str]:
    """Files in the savedmodel/ folder of an earlier export that a SavedModel does not hold."""
    folder = os.path.join(out_dir, FILES["savedmodel"])
    if "savedmodel" not in formats or not os.path.isdir(folder):
        return []
    return [os.path.relpath(os.path.join(root, name), out_dir)
            for root, _, names in os.walk(folder) for name in names
            if os.path.relpath(os.path.join(root, name), folder).split(os.sep)[0]
            not in SAVEDMODEL_FILES]


def replace(src: str, dst: str) -> None:
    """Move a finished export over the old one, named in one line (a folder cannot be replaced
    in one step; foreign_files checked that the old one holds only a SavedModel's files)."""
    if os.path.lexists(dst):
        print(f"replacing {dst} of an earlier export")
    if os.path.isdir(dst) and not os.path.islink(dst):
        shutil.rmtree(dst)
    os.replace(src, dst)


def export(serving: Serving, fmt: str, out_dir: str, opt) -> str:
    """Writes one format and its JSON into out_dir. They are written in a scratch folder
    there and moved into place when complete: an export interrupted while it is written leaves
    the previous one as it was."""
    name = FILES[fmt]
    scratch = tempfile.mkdtemp(prefix=f".{fmt}-", dir=out_dir)
    try:
        extra = WRITERS[fmt](serving, os.path.join(scratch, name), opt)
        info = {"format": fmt, "path": name, **serving.meta, **tensor_info(serving), **extra,
                "tensorflow": tf.__version__}
        with open(os.path.join(scratch, f"{fmt}.json"), "w") as f:
            json.dump(info, f, indent=2)
        replace(os.path.join(scratch, name), os.path.join(out_dir, name))
        replace(os.path.join(scratch, f"{fmt}.json"), os.path.join(out_dir, f"{fmt}.json"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return os.path.join(out_dir, name)


def main(argv: list[str] | None = None) -> list[str]:
    opt = ExportOptions().parse(argv, verbose=False)
    try:
        formats = checked_formats(opt.format)
        prefix = checkpoints.intact(checkpoints.resolve(opt.weight_path))
        out_dir = opt.output or result_folders.beside(prefix, "export")
        serving = serving_graph(opt, prefix)
        # after the checks above, so that they leave no folder
        result_folders.claim(out_dir, "export.py", "--output",
                             legacy=tuple(f"{fmt}.json" for fmt in FORMATS))
        foreign = foreign_files(out_dir, formats)
        if foreign:
            raise ValueError(f"{result_folders.listed(foreign)} in --output {out_dir!r} would be "
                             f"lost with the SavedModel it replaces: move them away")
        written = [export(serving, fmt, out_dir, opt) for fmt in formats]
    except (OSError, ValueError) as err:   # FileNotFoundError is an OSError
        sys.exit(f"error: {err}")
    for path in written:
        print(f"wrote {path}")
    return written


if __name__ == "__main__":
    main()
