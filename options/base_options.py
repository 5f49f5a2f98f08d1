"""Options shared by train.py and test.py (the authors' names kept where they exist)."""
from __future__ import annotations

import argparse
import os

import data
from networks import generators
from options.arg_types import int_list, positive
from tf1 import usable_precision


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # the repository
# path options that may name what ships in the repository (weights, sample faces)
SHIPPED_PATHS = ("weight_path", "weight_path_4x", "test_path")


def in_repository(path: str) -> str:
    """`path` as given where it exists from the working folder (the README runs the scripts from
    the repository root) or is absolute; else the repository's own, where that exists. So the
    shipped weights and sample faces are found whatever folder a script is run from."""
    if os.path.isabs(path) or os.path.exists(path):
        return path
    inside = os.path.join(ROOT, path)
    return inside if os.path.exists(inside) else path


def shipped_weights(model: str, scale: int = 8) -> str:
    """Where the weights trained here for `model` ship: checkpoint/<model>_lfw128; EIPNet at
    --scale 4, trained on the photo degradation: checkpoint/eipnet_x4_photo."""
    if scale == 4:
        return os.path.join("checkpoint", f"{model}_x4_photo")
    return os.path.join("checkpoint", f"{model}_lfw128")


def add_weight_path(parser: argparse.ArgumentParser, scales: bool = True) -> None:
    """--weight_path of the scripts that run a trained generator (test, enhance, export);
    `scales`: the script takes --scale, so name the 4x default too."""
    x4 = f" ({shipped_weights('eipnet', 4)} for EIPNet at --scale 4)" if scales else ""
    parser.add_argument("--weight_path", default=None,
                        help="folder holding G_weight.ckpt (or a checkpoint prefix); default: "
                             "the weights shipped for --model, " + shipped_weights("<model>") + x4)


class BaseOptions:
    is_train = False
    # per --model: defaults that replace the parser's (EIPNet's) unless given on the command line
    model_defaults: dict[str, dict] = {}
    # options that do nothing for this script: still parsed (shared code reads them), not listed
    # by --help
    unused: tuple[str, ...] = ()

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        # experiment
        parser.add_argument("--save_path", default="my_run",
                            help="run name: results and weights go to checkpoint_path/save_path "
                                 "(not a shipped weights folder such as eipnet_lfw128: "
                                 "--pretrained starts from those)")
        parser.add_argument("--checkpoint_path", default="checkpoint", help="runs are stored here")
        parser.add_argument("--train_path", default="datasets/train", help="training images")
        parser.add_argument("--test_path", default="datasets/test", help="test / validation images")
        parser.add_argument("--gpu_ids", default="0", help="GPU ids for a GPU build, e.g. 0 or 0,1")
        # model
        parser.add_argument("--model", default="eipnet", choices=sorted(generators.GENERATORS),
                            help="generator; jeanet also changes the training defaults "
                                 "(see train_options.py)")
        parser.add_argument("--scale", type=int, default=8, choices=list(data.SCALES),
                            help="EIPNet's upscaling factor: 8 (the paper's 16 -> 128 px) or 4 "
                                 "(32 -> 128 px: Table 1 without its first step, ours); "
                                 "test.py, export.py and --pretrained read it from the "
                                 "checkpoint")
        parser.add_argument("--tail", default="auto", choices=["auto", "paper", "released"],
                            help="EIPNet's last conv: 3x3 (paper Table 1) or 1x1 (authors' "
                                 "released weights); auto = paper when training. test.py reads "
                                 "this and the two ablation options from the checkpoint")
        parser.add_argument("--edge_blocks", type=int_list, default=[1, 1, 1],
                            help="edge block on (1) / off (0) at 32,64,128 px (ablation, "
                                 "training)")
        parser.add_argument("--no_adaptive_shortcuts", action="store_true",
                            help="JEANet without its adaptive shortcuts alpha_k, beta_k "
                                 "(ablation, training)")
        parser.add_argument("--prior_input", default="lr", choices=["lr", "coarse"],
                            help="prior-guided: what the prior branch reads: lr (the thesis's "
                                 "two independent branches) or coarse (FSRNet's chain)")
        parser.add_argument("--se_relu", action="store_true",
                            help="prior-guided deviation: ReLU between Eq 3.3's dense layers")
        parser.add_argument("--block_skip", action="store_true",
                            help="prior-guided deviation: add the input to Eq 3.4's output")
        parser.add_argument("--no_res_bn", action="store_true",
                            help="prior-guided deviation: residual blocks without SRResNet's BN")
        # input
        parser.add_argument("--batchSize", type=positive, default=16, help="input batch size")
        parser.add_argument("--dataset", default="aligned", choices=["celeba", "vggface2", "aligned"],
                            help="crop preset (Section 4.2); aligned = resize only")
        parser.add_argument("--hr_resize", default="bilinear", choices=list(data.HR_RESIZE),
                            help="resize of the cropped face to 128 px: bilinear (EIPNet's "
                                 "authors' code), bicubic (JEANet Section IV-B, its default)")
        parser.add_argument("--degradation", default="bilinear_chain",
                            choices=list(data.DEGRADATIONS),
                            help="HR 128 -> LR 16: bilinear_chain (EIPNet's 128->64->32->16), "
                                 "bicubic (one antialiased bicubic x8, the prior-guided and "
                                 "SRResNet default) or photo (random blur, area downscale, "
                                 "noise and JPEG, as faces in photographs; per image, the same "
                                 "every run when testing)")
        parser.add_argument("--canny", default="paper", choices=list(data.CANNY_MODES),
                            help="Canny thresholds: paper 100/255, authors 50/255; adaptive: "
                                 "Eq 1-2, T_h = m + k_h*sigma, T_l = T_h/2; adaptive_k: "
                                 "T_l = m + k_l*sigma, T_h = m + k_h*sigma (Section 3.1)")
        parser.add_argument("--canny_k", type=float, nargs=2, default=list(data.CANNY_K),
                            metavar=("K_L", "K_H"), help="k_l and k_h of the adaptive rules")
        parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"],
                            help="bf16: oneDNN auto mixed precision on a CPU with avx512_bf16 or "
                                 "amx_bf16 (elsewhere fp32, said once); fp16: on a GPU build")
        return parser

    def parse(self, args: list[str] | None = None, verbose: bool = True) -> argparse.Namespace:
        self.parser = self.initialize(argparse.ArgumentParser(
            formatter_class=argparse.ArgumentDefaultsHelpFormatter))
        for action in self.parser._actions:
            if action.dest in self.unused:
                action.help = argparse.SUPPRESS
        model = self.parser.parse_known_args(args)[0].model
        self.parser.set_defaults(**self.model_defaults.get(model, {}))
        opt = self.parser.parse_args(args)
        if opt.scale != 8 and opt.model != "eipnet":
            self.parser.error(f"--scale {opt.scale} is EIPNet's only; --model {opt.model} "
                              f"upscales 8x")
        opt.isTrain = self.is_train
        opt.precision = usable_precision(opt.precision)
        opt.run_dir = os.path.join(opt.checkpoint_path, opt.save_path)
        if getattr(opt, "weight_path", "") is None:
            opt.weight_path = shipped_weights(opt.model, opt.scale)
        for name in SHIPPED_PATHS:
            if isinstance(getattr(opt, name, None), str):
                setattr(opt, name, in_repository(getattr(opt, name)))
        if verbose:
            print(self.format(opt))
        return opt

    def format(self, opt: argparse.Namespace) -> str:
        lines = ["----------------- Options ---------------"]
        for k, v in sorted(vars(opt).items()):
            default = self.parser.get_default(k)
            comment = f"\t[default: {default}]" if v != default and default is not None else ""
            lines.append(f"{k:>25}: {str(v):<30}{comment}")
        lines.append("----------------- End -------------------")
        return "\n".join(lines)

    def save(self, opt: argparse.Namespace) -> None:
        """Write opt.txt into the run folder so a run can always be read back."""
        os.makedirs(opt.run_dir, exist_ok=True)
        with open(os.path.join(opt.run_dir, "opt.txt"), "w") as f:
            f.write(self.format(opt) + "\n")
