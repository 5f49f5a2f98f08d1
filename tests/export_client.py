"""A deployment client that knows nothing of this repository: it loads exports written by
export.py with TensorFlow or ONNX Runtime alone and runs them on saved inputs.

    python export_client.py JOBS.json

JOBS.json is a list of {"format": "savedmodel"|"frozen"|"onnx", "path": export, "lr": .npy,
"result": .npz}; each result holds every output of the export, by name. It fails if any module
of the repository was imported.
"""
import json
import os
import sys

import numpy as np

REPO_MODULES = {"tf1", "model", "networks", "photos", "evaluation", "checkpoints", "export",
                "data", "test"}


def savedmodel(path: str):
    import tensorflow as tf
    serve = tf.saved_model.load(path).signatures["serving_default"]
    return lambda lr: {name: t.numpy() for name, t in serve(lr=tf.constant(lr)).items()}


def frozen(path: str):
    import tensorflow as tf
    graph_def = tf.compat.v1.GraphDef()
    with open(path, "rb") as f:
        graph_def.ParseFromString(f.read())
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name="")
    with open(os.path.join(os.path.dirname(path), "frozen.json")) as f:
        names = list(json.load(f)["outputs"])   # the output node names
    session = tf.compat.v1.Session(graph=graph)
    return lambda lr: session.run({name: f"{name}:0" for name in names}, {"lr:0": lr})


def onnx(path: str):
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return lambda lr: dict(zip(names, session.run(names, {"lr": lr})))


def main(jobs_file: str) -> None:
    with open(jobs_file) as f:
        jobs = json.load(f)
    loaded = {}
    for job in jobs:
        key = (job["format"], job["path"])
        if key not in loaded:
            loaded[key] = {"savedmodel": savedmodel, "frozen": frozen, "onnx": onnx}[
                job["format"]](job["path"])
        np.savez(job["result"], **loaded[key](np.load(job["lr"])))
    imported = REPO_MODULES & set(sys.modules)
    if imported:
        sys.exit(f"the client imported the repository's {sorted(imported)}")


if __name__ == "__main__":
    main(sys.argv[1])
