"""SRResNet (--model srresnet), the thesis's Table 4.1 baseline: SRGAN's generator at 8x, its
parameter count against one computed here from SRGAN's Fig. 4, batch norm, and a run of
train.py then test.py on real faces."""
import numpy as np
import pytest

import model
from networks import srresnet
import test as test_script
from conftest import two_step_run
from tf1 import tf

pytestmark = pytest.mark.cpu_numbers   # reruns under tools/avx2_caps.py in .ci/run


def conv_params(k: int, c_in: int, c_out: int) -> int:
    return k * k * c_in * c_out + c_out


def srgan_params(n: int = 64, blocks: int = 16, stages: int = 3) -> int:
    """SRGAN Fig. 4 from its layer list: k9n64 conv + PReLU; per residual block two k3n64
    convs, two BN (gamma, beta) and a PReLU; k3n64 conv + BN; per 2x stage a k3n256 conv and a
    PReLU after the shuffle; k9n3 conv. PReLU slopes and BN scales are per channel."""
    head = conv_params(9, 3, n) + n
    block = 2 * conv_params(3, n, n) + 2 * 2 * n + n
    mid = conv_params(3, n, n) + 2 * n
    stage = conv_params(3, n, 4 * n) + n
    return head + blocks * block + mid + stages * stage + conv_params(9, n, 3)


def test_shapes_params_and_batch_norm(graph):
    lr = tf.placeholder(tf.float32, [1, 16, 16, 3])
    out = srresnet.generator(lr, training=True)
    assert out.rgb.shape.as_list() == [1, 128, 128, 3] and out.edges == (None, None, None)
    assert out.coarse is None and out.parsing is None
    assert model.count_params("generator") == srgan_params() == 1_698_435
    shuffles = [op for op in graph.get_operations() if op.type == "DepthToSpace"]
    assert [op.outputs[0].shape.as_list()[1] for op in shuffles] == [32, 64, 128]
    # 33 batch norms (2 per block and the one after the blocks), each updating 2 averages
    assert len(tf.get_collection(tf.GraphKeys.UPDATE_OPS, "generator")) == 2 * 33
    assert len(tf.get_collection(tf.GraphKeys.MOVING_AVERAGE_VARIABLES, "generator")) == 2 * 33


def test_train_then_test_end_to_end(tmp_path, train_paths, val_paths):
    run = two_step_run("srresnet", tmp_path, train_paths, val_paths, n_train=4, batch=2)
    opt_txt = (run / "opt.txt").read_text()
    assert "optimizer: rmsprop" in opt_txt and "degradation: bicubic" in opt_txt
    assert "step 2: final" in (run / "loss_log.txt").read_text()
    saved = dict(tf.train.list_variables(str(run / "G_weight.ckpt")))
    means = tf.train.load_variable(str(run / "G_weight.ckpt"), "generator/res1/bn1/moving_mean")
    assert "generator/upscale3/conv/w" in saved and np.abs(means).max() > 0   # averages moved
    summary = test_script.main(["--model", "srresnet", "--weight_path", str(run),
                                "--test_path", str(tmp_path / "val"), "--metrics", "psnr,ssim",
                                "--result_dir", str(tmp_path / "result"), "--no_figures"])
    assert summary["images"]["scored"] == 2 and summary["complexity"]["params"] == srgan_params()
    assert summary["degradation"] == "bicubic"
    psnr = summary["metrics"]["psnr"]
    assert 5 < psnr["sr"] < 40 and 15 < psnr["bicubic"] < 40
