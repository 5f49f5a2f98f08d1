from .base_options import BaseOptions, add_weight_path

# Enhance a face when its 16x16 model input, brought back to the face's native size, is at least
# this close (PSNR, dB) to the native face: the input then holds the face's detail and the 8x
# model has something to add. Chosen from tools/quality.py's per-face scores (docs/photos.md).
MIN_KEPT_DB = 40.0


class EnhanceOptions(BaseOptions):
    # enhance.py aligns each face itself and reads the architecture from the checkpoint
    unused = ("save_path", "checkpoint_path", "train_path", "test_path", "tail", "edge_blocks",
              "no_adaptive_shortcuts", "prior_input", "se_relu", "block_skip", "no_res_bn",
              "dataset", "hr_resize", "degradation", "canny", "canny_k")

    def initialize(self, parser):
        BaseOptions.initialize(self, parser)
        parser.add_argument("--input", required=True, help="a photograph or a folder of them")
        parser.add_argument("--result_dir", default="results/enhance", help="output folder")
        parser.add_argument("--upscale", type=int, default=4,
                            help="output size = upscale x input (bicubic outside the faces)")
        add_weight_path(parser)
        parser.add_argument("--min_kept_db", type=float, default=MIN_KEPT_DB,
                            help="enhance a face only when its 16x16 input keeps its detail: "
                                 "PSNR of the input brought back to the native face >= this")
        parser.add_argument("--all_faces", action="store_true",
                            help="enhance every face, whatever --min_kept_db says")
        parser.add_argument("--no_figures", action="store_true", help="skip the before/after figure")
        return parser
