import argparse

import data
from .base_options import BaseOptions, add_weight_path, shipped_weights

# Enhance a face larger than the largest model input (16x16, or 32x32 with a 4x model) when that
# input, brought back to the face's native size, is at least this close (PSNR, dB) to the native
# face: the input then holds the face's detail and the model has something to add. Chosen from
# tools/quality.py's per-face scores (docs/photos.md).
MIN_KEPT_DB = 40.0

# Faces up to this size go to their model unwarped at their native size, but for those that fit
# the 4x model's 32 px input (enhance.native_route); measured by tools/gain_by_size.py
# (docs/photos.md): past 40 px the 4x model's lead over bicubic on lfw128/val falls.
MAX_NATIVE_PX = 40.0

# A detected box is enhanced only if it passes all four. Measured on the 69 boxes MTCNN finds on
# ../shared/data/photos (native, JPEG 75, 4x area down, both; searched at --upscale 4) by
# tools/face_filter_check.py (docs/photos.md, "Telling faces from false boxes"):
# - 64 true faces score 0.826-1.000; the false boxes 0.71, 0.731, 0.807, 0.838, 0.937. Between
#   the lowest true face and the highest false box of the native photos, where both known false
#   enhancements were (the blouse, 0.71; a glass, 0.807). The 0.838 and 0.937 boxes score above
#   true faces that --all_faces must keep, so no score rejects them.
# - The landmarks of true faces fit the template at 0.98-7.03 px RMS; the false boxes at
#   2.19-3.21 (dlib's predictor always returns a face's shape): a bound above every true face,
#   for landmarks that are no face at all.
# - True boxes are 6.0 px wide or more (the 4x-downscaled photos); at --upscale 4 nothing under
#   5 px is found, but larger upscales search smaller boxes (one of 2.9 px at --upscale 8).
# - dlib's face score around the box (photos.faces.dlib_score: the best of its CNN detector's
#   confidence and its HOG detector's score): true faces -0.30 and up, false boxes -1.01 and
#   down (dlib's CNN finds no face in any of them); the threshold sits in the middle of the gap.
MIN_SCORE = 0.815          # MTCNN's confidence
MAX_TEMPLATE_FIT = 8.0     # RMS px (128 px crop) between the aligned 5 points and the template
MIN_FACE_PX = 5.0          # the box's shorter side in the photo
MIN_DLIB_SCORE = -0.65     # dlib's second opinion


def native_px(text: str) -> float:
    """--max_native_px: up to the 8x model's output size. A face that large has nothing left
    to gain, and the unwarped graph's memory grows as the face's square (8n px outputs)."""
    value = float(text)
    if not 0 <= value <= data.HR_SIZE:
        raise argparse.ArgumentTypeError(
            f"{value:g} px is out of range: pass 0 (no face unwarped) to {data.HR_SIZE} (the 8x "
            f"model's output size; the default {MAX_NATIVE_PX:g} is measured, docs/photos.md)")
    return value


class EnhanceOptions(BaseOptions):
    # enhance.py aligns each face itself and reads the architecture from the checkpoint
    unused = ("save_path", "checkpoint_path", "train_path", "test_path", "tail", "edge_blocks",
              "no_adaptive_shortcuts", "prior_input", "se_relu", "block_skip", "no_res_bn",
              "dataset", "hr_resize", "degradation", "canny", "canny_k", "scale")

    def initialize(self, parser):
        BaseOptions.initialize(self, parser)
        parser.add_argument("--input", required=True, help="a photograph or a folder of them")
        parser.add_argument("--result_dir", default="results/enhance", help="output folder")
        parser.add_argument("--upscale", type=int, default=4,
                            help="output size = upscale x input (bicubic outside the faces)")
        add_weight_path(parser, scales=False)
        parser.add_argument("--weight_path_4x", default="none",
                            help="an EIPNet trained at scale 4 (train.py's option; shipped: " +
                                 shipped_weights("eipnet", 4) + ") for the faces of 17-32 px "
                                 "(and larger ones); none: the 8x model takes every face")
        parser.add_argument("--min_kept_db", type=float, default=MIN_KEPT_DB,
                            help="enhance a face larger than the largest model input only when "
                                 "that input keeps its detail: "
                                 "PSNR of the input brought back to the native face >= this")
        parser.add_argument("--max_native_px", type=native_px, default=MAX_NATIVE_PX,
                            help="EIPNet: faces up to this size (px, 0-128) are the model's "
                                 "input unwarped at their own size, but for those that fit the "
                                 "4x model's input; larger ones follow --min_kept_db")
        parser.add_argument("--all_faces", action="store_true",
                            help="enhance every face, whatever --min_kept_db says")
        parser.add_argument("--min_score", type=float, default=MIN_SCORE,
                            help="a box is a face only with at least this MTCNN score")
        parser.add_argument("--max_template_fit", type=float, default=MAX_TEMPLATE_FIT,
                            help="... and 5 landmarks within this RMS (px of a 128 px crop) of "
                                 "the face template after alignment")
        parser.add_argument("--min_face_px", type=float, default=MIN_FACE_PX,
                            help="... and a box at least this wide in the photo (px)")
        parser.add_argument("--min_dlib_score", type=float, default=MIN_DLIB_SCORE,
                            help="... and dlib's face score around the box (its CNN and HOG "
                                 "detectors' best) at least this")
        parser.add_argument("--no_figures", action="store_true", help="skip the before/after figure")
        return parser
