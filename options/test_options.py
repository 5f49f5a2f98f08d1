import argparse
import os

from .arg_types import non_negative, str_list
from .base_options import BaseOptions, add_weight_path


def default_eval_cache() -> str:
    """In the user's cache folder (XDG), not in the repository or the test set."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "eipnet_tf", "eval_references.sqlite")


class TestOptions(BaseOptions):
    # JEANet scores on Y (Section IV-A) and resizes HR faces bicubically (Section IV-B); the
    # thesis's models degrade by bicubic x8 (its Section 4.1)
    model_defaults = {"jeanet": {"y_channel": True, "hr_resize": "bicubic"},
                      **{m: {"degradation": "bicubic"}
                         for m in ("prior_guided", "prior_guided_gan", "srresnet")}}

    def initialize(self, parser):
        BaseOptions.initialize(self, parser)
        add_weight_path(parser)
        parser.add_argument("--result_dir", default=None,
                            help="output folder (default: result/ in the folder of --weight_path; "
                                 "result_<checkpoint>/ for another checkpoint than its "
                                 "G_weight.ckpt)")
        parser.add_argument("--input", default="auto", choices=["auto", "hr", "lr"],
                            help="hr: degrade then score; lr: SR only; auto: images of the model's input size (16x16; 32x32 at --scale 4) are LR")
        parser.add_argument("--metrics", type=str_list,
                            default=["psnr", "ssim", "fr", "vif", "tar", "brisque"],
                            help="metrics to compute: psnr,ssim,fr,vif,tar,brisque")
        parser.add_argument("--lpips_weights", default=None,
                            help="AlexNet LPIPS weights .npz (format in networks/lpips_tf.py); adds the "
                                 "LPIPS column. None ship: docs/evaluation.md, \"LPIPS\"")
        parser.add_argument("--y_channel", action=argparse.BooleanOptionalAction, default=False,
                            help="PSNR/SSIM on the Y channel of YCbCr (JEANet's Section IV-A "
                                 "protocol, its default)")
        parser.add_argument("--tar_algorithm", type=float, nargs="+", default=[0.5, 0.6],
                            help="face_recognition Euclidean distance thresholds d (Eq 12)")
        parser.add_argument("--tar_network", type=float, nargs="+", default=[0.02, 0.04],
                            help="FaceNet squared-L2 thresholds d (Eq 12)")
        parser.add_argument("--no_figures", action="store_true", help="skip comparison figures")
        parser.add_argument("--workers", type=non_negative, default=os.cpu_count() or 1,
                            help="processes for the per-face metrics and images, beside the "
                                 "generator's (0: all in the main process)")
        parser.add_argument("--resume", action="store_true",
                            help="keep the faces already in --result_dir's metrics.csv and "
                                 "score only the others")
        parser.add_argument("--eval_cache", default=default_eval_cache(),
                            help="SQLite file keeping each test face's model-independent results "
                                 "(bicubic baseline, HR face box and identity vectors) between "
                                 "runs, so a rerun scores only the model (none: off)")
        parser.add_argument("--fps", action="store_true",
                            help="measure FPS at batch 1 and 16 for the complexity table")
        return parser
