import sys

from .arg_types import positive, str_list
from .base_options import BaseOptions, add_weight_path

FORMATS = ("savedmodel", "frozen", "onnx")
OPSET = 17   # ONNX opset: tf2onnx 1.17 converts up to 18; 17 runs on older ONNX Runtimes too


def _one_line_error(message: str) -> None:
    sys.exit(f"error: {message} (python export.py --help lists the options)")


class ExportOptions(BaseOptions):
    def initialize(self, parser):
        BaseOptions.initialize(self, parser)
        parser.error = _one_line_error   # a bad --model or --dtype: one line, not the usage
        add_weight_path(parser)
        parser.add_argument("--output", default=None,
                            help="folder for the exports (default: export/ in the folder of "
                                 "--weight_path; export_<checkpoint>/ for another checkpoint "
                                 "than its G_weight.ckpt)")
        parser.add_argument("--format", type=str_list, default=list(FORMATS),
                            help=f"any of {','.join(FORMATS)}")
        parser.add_argument("--dtype", default="float32", choices=["float32", "uint8"],
                            help="lr and sr tensors: float32 (sr not clipped) or uint8 (sr "
                                 "clipped and rounded in the graph); both RGB 0..255")
        parser.add_argument("--side_outputs", action="store_true",
                            help="also output the edge maps (the prior-guided models: the "
                                 "coarse SR and the parsing maps), float32")
        parser.add_argument("--opset", type=positive, default=OPSET, help="ONNX opset (tf2onnx)")
        return parser
