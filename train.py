"""Train EIPNet (paper Section 4.2), JEANet (--model jeanet, with its paper's defaults) or the
thesis's prior-guided network (--model prior_guided, prior_guided_gan; with its defaults).

    python train.py --train_path datasets/train --test_path datasets/test --save_path NAME

Writes to checkpoint/NAME/: opt.txt, loss_log.txt, TensorBoard events (logs/), sample grids
(samples/), full checkpoints for --continue_train (model.ckpt-STEP) and the generator-only
G_weight.ckpt (best validation PSNR so far, the authors' release layout). The prior-guided
models also cache their parsing ground truth (photos/parsing.py) in --parsing_cache, by default
checkpoint/NAME/parsing/.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from typing import Callable, NamedTuple, NoReturn

import cv2
import numpy as np
from tqdm import tqdm

import checkpoints
import data
import distribute
from evaluation.metrics import psnr
import losses
import model
from networks import generators, perceptual
from networks.identity import IdentityNet
from options import opt_txt
from options.train_options import TrainOptions
from photos import parsing
from tf1 import session_config, tf


class GeneratorAverage(NamedTuple):
    """An exponential moving average of G's weights (BasicSR's ema_decay), updated after each
    generator step and saved beside G in the same layout."""
    sr: tf.Tensor            # the averaged generator's SR of the graph's lr, inference mode
    reset: tf.Operation      # average := weights, after a --pretrained restore
    saver: tf.train.Saver    # the average under G's own variable names (G_WEIGHT_EMA)


class TrainGraph(NamedTuple):
    lr: tf.Tensor
    hr: tf.Tensor
    edge_targets: tuple
    parsing_targets: tf.Tensor   # (N,128,128,11) part maps 0..1, fed when L_parsing is on
    training: tf.Tensor      # bool, default False: batch-norm statistics of the batch
    sr: model.GeneratorOutput
    terms: dict              # enabled generator loss terms before the adversarial phase
    total: tf.Tensor
    train_g: tf.Operation
    terms_gan: dict          # the same with L_ad (empty when L_ad is off)
    total_gan: tf.Tensor | None
    train_g_gan: tf.Operation | None
    d_loss: tf.Tensor | None
    train_d: tf.Operation | None
    global_step: tf.Variable
    best_psnr: tf.Variable
    logged: dict             # name -> scalar variable logged to TensorBoard (JEANet's alpha_k)
    ema: GeneratorAverage | None = None   # --ema_decay: G's moving average


def moving_average(opt, lr, train_steps: list, global_step) -> tuple[list, GeneratorAverage]:
    """`train_steps` each followed by the average's update, and the average. Its decay warms
    up as TensorFlow's num_updates rule does: min(decay, (1 + step) / (10 + step))."""
    g_vars = tf.trainable_variables("generator")
    ema = tf.train.ExponentialMovingAverage(opt.ema_decay, num_updates=global_step)
    steps = []
    for step in train_steps:
        if step is None:
            steps.append(None)
            continue
        with tf.control_dependencies([step]):
            steps.append(ema.apply(g_vars))

    def averaged(getter, *args, **kwargs):
        var = getter(*args, **kwargs)
        return ema.average(var) or var   # batch-norm statistics and the design are not averaged

    with tf.variable_scope(tf.get_variable_scope(), reuse=True, custom_getter=averaged):
        sr = generators.build(opt, lr, False).rgb
    reset = tf.group(*[tf.assign(ema.average(v), v) for v in g_vars])
    names = {v.op.name: ema.average(v) or v for v in checkpoints.generator_variables()}
    return steps, GeneratorAverage(sr, reset, tf.train.Saver(names, max_to_keep=1))


def placeholders(opt):
    lr = generators.lr_placeholder(opt)
    hr = tf.placeholder(tf.float32, [None, data.HR_SIZE, data.HR_SIZE, 3], "hr")
    edges = tuple(tf.placeholder(tf.float32, [None, s, s, 1], f"canny_{s}") for s in (32, 64, 128))
    maps = tf.placeholder(tf.float32, [None, data.HR_SIZE, data.HR_SIZE, parsing.N_PARTS],
                          "parsing")
    return lr, hr, edges, maps


def train_inputs(opt) -> tuple:
    """The fed tensors of a train graph: placeholders() and the batch-norm switch."""
    return (*placeholders(opt), tf.placeholder_with_default(False, [], "training"))


def on_pair(net, sr, hr, name: str) -> list:
    """[net(sr), net(hr)] from one call: a frozen graph (FaceNet) is imported once, not once
    per side with its ~90 MB of constants."""
    return tf.split(net(tf.concat([sr, hr], 0), name), 2)


def generator_terms(opt, sr: model.GeneratorOutput, hr, edge_targets, parsing_targets) -> dict:
    """The enabled non-adversarial terms of Eq 11 (EIPNet), Eq 6-8 (JEANet) or Eq 3.8 and
    L_vgg of Eq 3.10 (the prior-guided models)."""
    terms = {}
    if "rgb" in opt.losses:
        terms["rgb"] = losses.l_rgb(sr.rgb, hr, opt.loss_norm)
    if "l1" in opt.losses:
        terms["l1"] = losses.l_1(sr.rgb, hr)
    if "edge" in opt.losses and any(e is not None for e in sr.edges):
        terms["edge"] = losses.l_e(sr.edges, edge_targets,
                                   generators.GENERATORS[opt.model].edge_weights)
    if "lc" in opt.losses:
        terms["lc"] = losses.l_lc(sr.rgb, hr, opt.loss_norm)
    if "id" in opt.losses:
        facenet = IdentityNet(opt.facenet_graph, opt.id_vector)
        terms["id"] = losses.l_id(*on_pair(facenet, sr.rgb, hr, "facenet"), opt.id_scale)
    if "coarse" in opt.losses:
        terms["coarse"] = losses.l_mse01(sr.coarse, hr)
    if "parsing" in opt.losses:
        terms["parsing"] = losses.l_parsing(sr.parsing, parsing_targets)
    if "final" in opt.losses:
        terms["final"] = losses.l_mse01(sr.rgb, hr)
    if "vgg" in opt.losses:
        features = perceptual.feature_network(opt.vgg19_weights, opt.facenet_graph)
        terms["vgg"] = losses.l_vgg(*on_pair(features, sr.rgb, hr, "features"))
    return terms


def learning_rate(opt, global_step):
    """--learning_rate, halved at each of --lr_decay_steps, or (--lr_schedule cosine) decayed
    along half a cosine to 0 at --niter."""
    if opt.lr_schedule == "cosine":
        return tf.train.cosine_decay(opt.learning_rate, global_step, opt.niter)
    steps = sorted(opt.lr_decay_steps)
    if not steps:
        return tf.constant(opt.learning_rate)
    values = [opt.learning_rate * 0.5 ** i for i in range(len(steps) + 1)]
    return tf.train.piecewise_constant(global_step, [np.int64(s) for s in steps], values)


class RMSProp(tf.train.Optimizer):
    """PyTorch's torch.optim.RMSprop at its defaults (the thesis trained in PyTorch, Section
    4.2): v = alpha v + (1 - alpha) g^2 from v = 0, then w -= lr g / (sqrt(v) + eps), with eps
    outside the root. TF1's RMSPropOptimizer differs: decay 0.9, eps inside the root, and the
    mean square starting at 1."""

    def __init__(self, learning_rate, alpha: float = 0.99, eps: float = 1e-8,
                 name: str = "RMSProp"):
        super().__init__(False, name)
        self._lr, self._alpha, self._eps = learning_rate, alpha, eps

    def _create_slots(self, var_list):
        for v in var_list:
            self._zeros_slot(v, "square_avg", self._name)

    def _apply_dense(self, grad, var):
        v = self.get_slot(var, "square_avg")
        v_t = tf.assign(v, self._alpha * v + (1.0 - self._alpha) * tf.square(grad))
        lr = tf.cast(self._call_if_callable(self._lr), var.dtype.base_dtype)
        return tf.assign_sub(var, lr * grad / (tf.sqrt(v_t) + self._eps)).op

    _resource_apply_dense = _apply_dense


def optimizer(opt, rate, adam_betas: tuple) -> tf.train.Optimizer:
    """Adam with `adam_betas` (EIPNet, JEANet) or RMSProp (the prior-guided models' thesis)."""
    if opt.optimizer == "rmsprop":
        return RMSProp(rate)
    return tf.train.AdamOptimizer(rate, *adam_betas)


def minimize(optim: tf.train.Optimizer, loss, global_step, var_list,
             scope: str = "generator") -> tf.Operation:
    """An optimiser step that also runs the batch-norm moving-average updates under `scope`.
    Under a tf.distribute strategy the loss is divided by the number of replicas, whose
    gradients the optimiser sums, and `scope` is the replica's own (replica_1/generator, ...)."""
    replica = tf.get_default_graph().get_name_scope()
    if tf.distribute.has_strategy():
        loss /= tf.distribute.get_replica_context().num_replicas_in_sync
        scope = f"{replica}/{scope}" if replica else scope
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS, scope)):
        return optim.minimize(loss, global_step, var_list)


def build_train_graph(opt, inputs: tuple | None = None) -> TrainGraph:
    """Placeholders (or `inputs`, as train_inputs, e.g. a replica's shard), generator, loss
    terms and optimisers (Adam: G 0.9/0.999/1e-8, D 0.5/0.9; or RMSProp for both)."""
    lr, hr, edge_targets, parsing_targets, training = inputs or train_inputs(opt)
    sr = generators.build(opt, lr, training)
    weights = {"edge": opt.lambda_edge, "id": opt.alpha_id, "ad": opt.ad_r, "vgg": opt.beta_vgg,
               **{name: opt.alpha_content for name in losses.CONTENT_TERMS}}
    terms = generator_terms(opt, sr, hr, edge_targets, parsing_targets)
    total = losses.total(terms, weights)

    global_step = tf.train.get_or_create_global_step()
    best_psnr = tf.get_variable("best_val_psnr", [], tf.float32, tf.constant_initializer(-1.0),
                                trainable=False)
    g_vars = tf.trainable_variables("generator")
    g_optim = optimizer(opt, learning_rate(opt, global_step), (0.9, 0.999, 1e-8))
    train_g = minimize(g_optim, total, global_step, g_vars)

    terms_gan, total_gan, train_g_gan, d_loss, train_d = {}, None, None, None, None
    if "ad" in opt.losses:
        d_real = generators.discriminate(opt, hr, training)
        d_fake = generators.discriminate(opt, sr.rgb, training, reuse=True)
        terms_gan = {**terms, "ad": losses.l_ad_g(d_fake)}
        total_gan = losses.total(terms_gan, weights)
        train_g_gan = minimize(g_optim, total_gan, global_step, g_vars)  # shares the slots
        d_loss = losses.l_ad_d(d_real, d_fake)
        train_d = minimize(optimizer(opt, opt.learning_rate, (0.5, 0.9)), d_loss, None,
                           tf.trainable_variables("discriminator"), "discriminator")
    logged = {v.op.name: v for v in tf.get_collection(model.LOGGED_SCALARS)}
    ema = None
    if opt.ema_decay:
        (train_g, train_g_gan), ema = moving_average(opt, lr, [train_g, train_g_gan], global_step)
    return TrainGraph(lr, hr, edge_targets, parsing_targets, training, sr, terms, total,
                      train_g, terms_gan, total_gan, train_g_gan, d_loss, train_d, global_step,
                      best_psnr, logged, ema)


def feed(g: TrainGraph, batch: data.Example, training: bool = True) -> dict:
    maps = {} if batch.parsing is None else {g.parsing_targets: batch.parsing}
    return {g.lr: batch.lr, g.hr: batch.hr, g.training: training,
            **dict(zip(g.edge_targets, batch.edges)), **maps}


class NonFiniteLoss(RuntimeError):
    hint = "lower --learning_rate or check the data, then --continue_train"


class ResumeError(RuntimeError):
    """A complete checkpoint that does not fit the graph of these options."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM; the run saves, then exits with 128 + the signal's number."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class Trainer:
    """Owns the session, loader, savers and logs of one run folder."""

    def __init__(self, opt, graph: TrainGraph, loader: data.BatchLoader, val: data.Example,
                 cluster: distribute.Cluster | None = None):
        self.opt, self.g, self.loader, self.val = opt, graph, loader, val
        self.run_dir = opt.run_dir
        # relative paths in the `checkpoint` index, so the run folder can be moved
        self.saver = tf.train.Saver(tf.global_variables(), max_to_keep=opt.max_to_keep,
                                    save_relative_paths=True)
        self.finite = tf.reduce_all([tf.reduce_all(tf.is_finite(v))
                                     for v in tf.global_variables() if v.dtype.is_floating])
        self.last_step = None    # (feed, loss tensors) of the last generator step
        self.g_saver = checkpoints.generator_saver()
        self.best_ph = tf.placeholder(tf.float32, [])
        self.set_best = tf.assign(self.g.best_psnr, self.best_ph)
        self.images = self._image_summaries()
        self.val_shown = data.take(val, 4)   # what the image summaries show
        self.saved_step = None
        self.writer = tf.summary.FileWriter(os.path.join(self.run_dir, "logs"))
        self.log = open(os.path.join(self.run_dir, "loss_log.txt"), "a")
        self.sess = (cluster.session() if cluster else
                     tf.Session(config=session_config(opt.precision, opt.gpu_ids)))

    def _image_summaries(self):
        g, n = self.g, 4
        up = tf.image.resize(g.lr[:n], [data.HR_SIZE, data.HR_SIZE], "bicubic")
        shown = [("LR_bicubic", up), ("SR", g.sr.rgb[:n]), ("HR", g.hr[:n])]
        shown += [(f"edge_{s}", e[:n]) for s, e in zip((32, 64, 128), g.sr.edges) if e is not None]
        if g.sr.coarse is not None:   # the prior-guided models: coarse SR and parsing maps
            classes = tf.argmax(parsing.with_background(g.sr.parsing[:n], 1.0, tf.concat), -1)
            shown += [("coarse_SR", g.sr.coarse[:n]),
                      ("parsing", tf.gather(tf.constant(parsing.PALETTE, tf.float32), classes))]
        return tf.summary.merge([tf.summary.image(name, tf.cast(tf.clip_by_value(x, 0, 255),
                                                                tf.uint8), max_outputs=n)
                                 for name, x in shown])

    def start(self, resume: str | None) -> int:
        """Restore the full checkpoint `resume` or initialise; with --continue_train, then tidy
        the run folder (checkpoints.tidy) and hand the checkpoints kept to the saver, which
        counts them in --max_to_keep. Returns the step."""
        if resume:
            self.check_untrained(resume)
            try:
                self.saver.restore(self.sess, resume)
            except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as err:
                raise ResumeError(f"{resume} does not fit this model: resume with the --model, "
                                  f"--losses and --ema_decay it was trained with "
                                  f"({checkpoints.first_line(err)})") from err
        else:
            self.sess.run(tf.global_variables_initializer())
            if self.opt.pretrained:   # fine-tuning: D and the optimiser slots start fresh
                g_vars = checkpoints.generator_variables(design=False)
                if self.opt.pretrained_layers == "shared":
                    g_vars = checkpoints.restorable(g_vars, self.opt.pretrained)
                tf.train.Saver(g_vars).restore(self.sess, self.opt.pretrained)
                if self.g.ema:
                    self.sess.run(self.g.ema.reset)
                line = initialised_from(self.opt.pretrained)
                self.write_log(line)
                print(line)
        if self.opt.continue_train:   # after the restore: nothing is deleted for a wrong --model
            kept, notes = checkpoints.tidy(self.run_dir, resume, self.opt.max_to_keep)
            for note in notes:
                print(note)
            self.saver.recover_last_checkpoints(kept)
        if not resume:
            return 0
        # the best PSNR reaches the graph only with a full save; G_weight.json is written at
        # the validation itself (the resume's folder: every worker reads the same one)
        kept = checkpoints.kept_psnr(os.path.dirname(resume))
        if kept > float(self.sess.run(self.g.best_psnr)):
            self.sess.run(self.set_best, {self.best_ph: kept})
        self.saved_step = int(self.sess.run(self.g.global_step))
        print(f"resumed from {resume}")
        self.write_log(f"resumed from iteration {self.saved_step} ({os.path.basename(resume)})")
        changed = changed_options(self.opt, os.path.dirname(resume))
        if changed:   # the log keeps what opt.txt, rewritten at this start, forgets
            print(changed)
            self.write_log(changed)
        return self.saved_step

    def check_untrained(self, resume: str) -> None:
        """ResumeError naming what `resume` holds that this graph would not restore (an EMA of G,
        D and its optimiser slots): resumed without it, the run would go on and save over it."""
        mine = {v.op.name for v in tf.global_variables()}
        dropped = sorted(set(checkpoints.variable_shapes(resume)) - mine)
        if dropped:
            raise ResumeError(f"{resume} holds what these options do not train "
                              f"({listed(dropped)}): resume with the --losses and --ema_decay "
                              f"it was trained with (its opt.txt names them)")

    def step(self, step: int) -> dict:
        g, opt = self.g, self.opt
        gan = g.train_d is not None and step >= opt.gan_start
        if gan:
            for _ in range(opt.D_steps_per_G):
                d_loss, _ = self.sess.run([g.d_loss, g.train_d], feed(g, self.loader.next()))
        terms, total, train = ((g.terms_gan, g.total_gan, g.train_g_gan) if gan
                               else (g.terms, g.total, g.train_g))
        batch = feed(g, self.loader.next())
        self.last_step = (batch, [total, g.d_loss] if gan else [total])
        values, total_value, _ = self.sess.run([terms, total, train], batch)
        values["total"] = total_value
        if gan:
            values["D"] = d_loss
        if not all(np.isfinite(v) for v in values.values()):
            raise NonFiniteLoss(f"non-finite loss at iteration {step + 1}: {values}")
        return values

    def ensure_finite(self, step: int) -> None:
        """NonFiniteLoss unless every variable, and the loss of the updated weights on the last
        batch, is finite: the loss a step reports is that of the weights before its update, and
        an update can leave finite weights whose next loss is NaN."""
        if self.last_step is None:   # nothing changed since the start
            return
        batch, loss = self.last_step
        finite, values = self.sess.run([self.finite, loss], batch)
        if not (finite and np.all(np.isfinite(values))):
            raise NonFiniteLoss(f"non-finite weights or loss after iteration {step}, "
                                f"which was not saved")

    def val_psnr(self, sr_tensor) -> tuple[float, np.ndarray]:
        """Mean PSNR of `sr_tensor` on the fixed validation set, and its SR."""
        srs = [self.sess.run(sr_tensor, {self.g.lr: lr})
               for lr in data.iterate_batches(self.val.lr, self.opt.batchSize)]
        sr = np.clip(np.concatenate(srs), 0, 255)
        return float(np.mean([psnr(s, h) for s, h in zip(sr, self.val.hr)])), sr

    def keep(self, step: int, value: float, saver: tf.train.Saver, g_weight: str) -> None:
        """Save `saver`'s generator as `g_weight` with its record (checkpoints.replace_kept)."""
        self.ensure_finite(step)
        checkpoints.replace_kept(saver, self.sess, self.run_dir, g_weight, step, value)

    def validate(self, step: int) -> float:
        """PSNR of the generator on the fixed validation set; keeps the best as G_weight.ckpt
        (and, with --ema_decay, the best average as G_weight_ema.ckpt)."""
        value, sr = self.val_psnr(self.g.sr.rgb)
        self.writer.add_summary(self.sess.run(self.images, feed(self.g, self.val_shown, False)),
                                step)
        self.scalars(step, {"val/psnr": value})
        self.write_grid(step, sr[:4])
        best = float(self.sess.run(self.g.best_psnr))
        if value > best:
            self.sess.run(self.set_best, {self.best_ph: value})
            self.keep(step, value, self.g_saver, checkpoints.G_WEIGHT)
        line = f"val step {step}: psnr {value:.3f} dB (best {max(value, best):.3f})"
        if self.g.ema:
            averaged, _ = self.val_psnr(self.g.ema.sr)
            self.scalars(step, {"val/psnr_ema": averaged})
            best_ema = checkpoints.kept_psnr(self.run_dir, checkpoints.G_WEIGHT_EMA)
            if averaged > best_ema:
                self.keep(step, averaged, self.g.ema.saver, checkpoints.G_WEIGHT_EMA)
            line += f", ema psnr {averaged:.3f} dB (best {max(averaged, best_ema):.3f})"
        self.write_log(line)
        return value

    def write_grid(self, step: int, sr: np.ndarray) -> None:
        lr_up = [cv2.resize(x, (data.HR_SIZE,) * 2, interpolation=cv2.INTER_CUBIC)
                 for x in self.val.lr[:len(sr)]]
        rows = [np.concatenate([u, s, h], axis=1) for u, s, h in zip(lr_up, sr, self.val.hr)]
        grid = np.clip(np.concatenate(rows, axis=0), 0, 255).astype(np.uint8)
        os.makedirs(os.path.join(self.run_dir, "samples"), exist_ok=True)
        cv2.imwrite(os.path.join(self.run_dir, "samples", f"step_{step:07d}.png"),
                    cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))

    def scalars(self, step: int, values: dict) -> None:
        self.writer.add_summary(tf.Summary(value=[tf.Summary.Value(tag=k, simple_value=float(v))
                                                  for k, v in values.items()]), step)

    def write_log(self, line: str) -> None:
        self.log.write(line + "\n")
        self.log.flush()

    def save(self, step: int) -> None:
        self.ensure_finite(step)
        self.saver.save(self.sess, os.path.join(self.run_dir, checkpoints.FULL_PREFIX), step,
                        write_meta_graph=False)
        self.saved_step = step
        self.writer.flush()

    def finish(self) -> int:
        """Save the last iteration, and G_weight.ckpt if no validation wrote one; the step."""
        step = int(self.sess.run(self.g.global_step))
        if step != self.saved_step:
            self.save(step)
        print(f"saved iteration {step} to {self.run_dir}")
        if not os.path.exists(os.path.join(self.run_dir, checkpoints.G_WEIGHT + ".index")):
            self.validate(step)
        return step

    def stop(self, err: NonFiniteLoss | distribute.LostWorker) -> NoReturn:
        """Record why the run stopped, in loss_log.txt too, and exit naming what is kept."""
        kept = ("no checkpoint was saved yet" if self.saved_step is None else
                f"{checkpoints.FULL_PREFIX}-{self.saved_step}, the last good checkpoint in "
                f"{self.run_dir}, is kept")
        self.write_log(f"stopped: {err}")
        self.close()
        sys.exit(f"stopped: {err}. {kept}; {err.hint}.")

    def close(self) -> None:
        self.loader.close()
        self.writer.close()
        self.log.close()
        self.sess.close()


def raise_interrupt(signum, frame):
    raise Interrupted(signum)


def check_inputs(opt) -> tuple[list[str], list[str], str | None]:
    """Fail before any graph is built: bad options, missing or empty folders, or a run folder
    in use. Returns the training images, the validation images and the checkpoint to resume."""
    unknown = set(opt.losses) - set(losses.TERMS)
    if unknown or not set(opt.losses) - {"ad"}:
        raise ValueError(f"--losses {','.join(opt.losses)}: choose from {','.join(losses.TERMS)} "
                         f"with at least one besides ad")
    if set(opt.losses) & set(losses.PRIOR_TERMS) and not generators.GENERATORS[opt.model].priors:
        raise ValueError(f"--losses {','.join(losses.PRIOR_TERMS)} need a generator with a "
                         f"prior branch (--model prior_guided or prior_guided_gan)")
    if "vgg" in opt.losses and opt.vgg19_weights and not os.path.isfile(opt.vgg19_weights):
        raise FileNotFoundError(f"--vgg19_weights {opt.vgg19_weights!r}: no such file")
    if not 0 <= opt.ema_decay < 1:
        raise ValueError(f"--ema_decay {opt.ema_decay}: pass a decay in [0, 1), e.g. 0.999 "
                         f"(0 = off)")
    if opt.lr_schedule == "cosine" and opt.lr_decay_steps:
        raise ValueError("--lr_decay_steps halves the rate of --lr_schedule halvings; "
                         "--lr_schedule cosine sets its own decay: pass one of the two")
    train_paths = data.list_images(opt.train_path)
    val_paths = data.list_images(opt.test_path)[:opt.val_size] if opt.test_path else []
    if not opt.test_path:
        train_paths, val_paths = held_out(train_paths, opt.val_size)
        print(f"validating on {len(val_paths)} of the {len(train_paths) + len(val_paths)} "
              f"training faces, held out of training (--test_path names a folder instead)")
    if len(train_paths) < opt.batchSize:
        print(f"note: {len(train_paths)} training images, fewer than one batch of {opt.batchSize}: "
              f"each batch repeats some of them")
    return train_paths, val_paths, checkpoint_to_resume(opt)


def validation_set(opt, val_paths: list[str]) -> data.Example:
    """The validation faces degraded to opt's LR size (known once --pretrained is read)."""
    _, val = data.load_eval_set(val_paths, opt.dataset, opt.canny, opt.canny_k, opt.hr_resize,
                                opt.degradation, generators.lr_size(opt))
    if val is None:
        raise data.DataError(f"no readable validation image in {opt.test_path or opt.train_path!r}")
    return val


def held_out(paths: list[str], val_size: int) -> tuple[list[str], list[str]]:
    """(training, validation) split of `paths`: a tenth of them, at most `val_size` and at
    least one, spread evenly over the sorted list, so a resume holds out the same faces."""
    if len(paths) < 2:
        raise data.DataError(f"{len(paths)} training face: too few to hold one out for "
                             f"validation; pass --test_path a folder of validation faces")
    n = max(1, min(val_size, len(paths) // 10))
    val = paths[::max(1, len(paths) // n)][:n]
    chosen = set(val)
    return [p for p in paths if p not in chosen], val


def checkpoint_to_resume(opt) -> str | None:
    """The newest complete full checkpoint of the run folder with --continue_train (naming any
    damaged newer one), else None. FileExistsError if a new run would overwrite files of an
    old one, or if there is nothing to resume."""
    found = checkpoints.run_files(opt.run_dir)
    if found and weights_only(found):   # shipped weights, or a run's G kept without its state
        raise FileExistsError(f"{opt.run_dir} holds trained weights ({', '.join(found)}) and no "
                              f"training state to resume: choose another --save_path "
                              f"(--pretrained {opt.run_dir} starts from its weights)")
    if not opt.continue_train:
        if found and distribute.writes_run_dir(opt):   # other workers write elsewhere
            raise FileExistsError(f"{opt.run_dir} already holds a training run ({', '.join(found)})"
                                  f": pass --continue_train to resume it, or choose another "
                                  f"--save_path")
        return None
    if not found:
        raise FileExistsError(f"--continue_train: no checkpoint in {opt.run_dir} to resume; "
                              f"check --checkpoint_path and --save_path")
    resume, damaged = checkpoints.newest_complete(opt.run_dir)
    for problem in damaged:
        print(f"warning: {problem}; looking for an older checkpoint")
    if resume:
        return resume
    if damaged or set(found) - {"opt.txt", "checkpoint"}:
        raise FileExistsError(f"--continue_train: no complete checkpoint in {opt.run_dir} to "
                              f"resume ({', '.join(found)}); move its files away to start "
                              f"again there, or choose another --save_path")
    print(f"note: {opt.run_dir} holds no saved iteration yet: starting at iteration 0")
    return None


def weights_only(found: list[str]) -> bool:
    """Whether run files `found` hold a kept generator but no full checkpoint (model.ckpt-N)."""
    kept = any(f.startswith(g + ".") for f in found for g in checkpoints.KEPT_GENERATORS)
    return kept and not any(f.startswith(checkpoints.FULL_PREFIX + "-") for f in found)


def generator_fit(opt, prefix: str) -> tuple[list[str], int, int]:
    """Why each generator variable of opt cannot start from the checkpoint `prefix` (missing
    there, or of another shape), how many of the generator's parameters can, and how many it
    has; found in a throwaway graph before anything is written."""
    with tf.Graph().as_default():
        generators.build(opt, generators.lr_placeholder(opt))
        mine = checkpoints.generator_variables(design=False)
        count = lambda variables: sum(v.shape.num_elements() for v in variables)
        return (checkpoints.mismatches(mine, prefix),
                count(checkpoints.restorable(mine, prefix)), count(mine))


def listed(items: list[str], shown: int = 5) -> str:
    return "; ".join(items[:shown]) + (f"; and {len(items) - shown} more"
                                       if len(items) > shown else "")


def check_fit(opt, prefix: str, option: str) -> None:
    """ValueError naming the generator variables `prefix` lacks for opt, before anything of the
    run (opt.txt first) is written."""
    wrong, _, _ = generator_fit(opt, prefix)
    if wrong:
        raise ValueError(f"{option} {prefix} does not fit --model {opt.model}: {listed(wrong)}. "
                         f"Pass the --model and --scale it was trained with (its opt.txt names them)")


def initialised_from(prefix: str) -> str:
    """The line that names a fine-tune's starting weights and, where recorded, their iteration
    (tools/learning_curve.py continues the count of images seen from it)."""
    iteration = checkpoints.iteration_of(prefix)
    return f"generator initialised from {prefix}" + (
        "" if iteration is None else f" (iteration {iteration})")


def changed_options(opt, folder: str) -> str | None:
    """The line naming each option of a resume that differs from the run's opt.txt (which the
    resume then rewrites): "options changed since opt.txt: NAME OLD -> NEW; ...", or None."""
    try:
        before = opt_txt.read(folder)
    except FileNotFoundError:
        return None
    changed = [f"{name} {before[name]} -> {value}" for name, value in sorted(vars(opt).items())
               if name in before and name != "continue_train" and str(value) != before[name]]
    return "options changed since opt.txt: " + "; ".join(changed) if changed else None


def pretrained_options(opt):
    """opt with --pretrained resolved to a checkpoint prefix and the architecture it fixes
    (EIPNet's tail, edge blocks, JEANet's shortcuts, the scale), each override noted; with
    --pretrained_layers shared, opt's own architecture and a note naming what starts fresh."""
    prefix = checkpoints.intact(checkpoints.resolve(opt.pretrained), "--pretrained")
    if opt.pretrained_layers == "shared":
        notes = shared_notes(opt, prefix)
    else:
        opt, notes = generators.trained_options(opt, prefix)
        check_fit(opt, prefix, "--pretrained")
    opt.pretrained = prefix
    for note in notes:
        print(note)
    return opt


def shared_notes(opt, prefix: str) -> list[str]:
    """One note naming the generator variables of opt that start fresh because `prefix` lacks
    them or holds them with another shape; ValueError if it holds less than half of the
    generator's parameters (weights of another model: they may share a layer or two)."""
    fresh, shared, total = generator_fit(opt, prefix)
    if shared < total / 2:
        raise ValueError(f"--pretrained {prefix} holds {shared / total:.0%} of the parameters of "
                         f"--model {opt.model}'s generator, less than half: pass weights of "
                         f"that model")
    return [f"note: --pretrained_layers shared: {shared:,} of {total:,} generator parameters "
            f"({shared / total:.0%}) from {prefix}; fresh: {listed(fresh) or 'none'}"]


def train(opt, train_paths: list[str], val: data.Example, resume: str | None,
          started: Callable[[], None] = lambda: None) -> int:
    """Train to opt.niter in a graph of its own, calling `started` once the run has started
    (restored or initialised); returns the last completed iteration."""
    with tf.Graph().as_default():
        return run_training(opt, train_paths, val, resume, started)


def part_maps(opt, train_paths: list[str]) -> parsing.PartMaps | None:
    """The cached parsing ground truth of the training images when L_parsing is on (computed
    here for the images not cached yet)."""
    if "parsing" not in opt.losses:
        return None
    cache = opt.parsing_cache or os.path.join(opt.run_dir, "parsing")
    print(f"parsing ground truth: {opt.parsing_masks or 'dlib landmarks'}, cached in {cache}")
    return parsing.PartMaps(cache, opt.dataset, opt.parsing_masks).prepare(train_paths)


def run_training(opt, train_paths: list[str], val: data.Example, resume: str | None,
                 started: Callable[[], None]) -> int:
    """Train from `resume` (or from scratch), calling `started` once restored or initialised;
    exits 128 + the signal's number after saving when Ctrl-C or SIGTERM stopped it."""
    tf.set_random_seed(opt.seed)
    maps = part_maps(opt, train_paths)
    cluster = None if opt.strategy == "none" else distribute.Cluster(opt)
    graph = (cluster.replicate(lambda inputs: build_train_graph(opt, inputs), train_inputs(opt))
             if cluster else build_train_graph(opt))
    workers, worker = (cluster.workers, cluster.worker) if cluster else (1, 0)
    # each worker loads its part of the global batch, from its own random stream
    loader = data.BatchLoader(train_paths, opt.batchSize // workers, opt.dataset, opt.rotations,
                              not opt.no_flip, opt.canny, opt.canny_k, opt.loader_threads,
                              seed=opt.seed + (checkpoints.step_of(resume) if resume else 0)
                              + 1_000_003 * worker,
                              max_scale=opt.rescale, parsing=maps, hr_resize=opt.hr_resize,
                              degradation=opt.degradation, lr_size=generators.lr_size(opt))
    trainer = Trainer(opt, graph, loader, val, cluster)
    if opt.pretrained:   # a fine-tune is often short: say what its checkpoints cost on disk
        size = sum(v.shape.num_elements() * v.dtype.size for v in tf.global_variables())
        print(f"note: each {checkpoints.FULL_PREFIX}-N holds G, D and the optimiser slots "
              f"({size / 2**20:.0f} MB); --max_to_keep {opt.max_to_keep} keeps that many, and "
              f"G_weight.ckpt alone is what test.py needs")
    if "vgg" in opt.losses:   # in the log too: never mistake the FaceNet stand-in for VGG19
        trainer.write_log(f"L_vgg features: {generators.perceptual_features(opt)} "
                          f"({opt.vgg19_weights or perceptual.STAND_IN})")
    try:
        start = trainer.start(resume)
        started()
        with checkpoints.signal_handlers(raise_interrupt):
            signum = train_loop(opt, trainer, start)
            step = trainer.finish()
    except NonFiniteLoss as err:
        trainer.stop(err)
    except distribute.LOST_WORKER_ERRORS as err:
        if not cluster or cluster.workers == 1:
            raise
        trainer.stop(distribute.LostWorker.of(err))
    if cluster and cluster.workers > 1:
        print(f"worker {cluster.worker}: weights fingerprint "
              f"{distribute.fingerprint(trainer.sess)}")
    if signum:
        trainer.write_log(f"interrupted by {signal.Signals(signum).name}: saved iteration {step}")
    trainer.close()
    if signum:
        sys.exit(128 + signum)
    return step


def train_loop(opt, trainer: Trainer, start: int) -> int | None:
    """Iterations start+1 .. opt.niter with their logs, validations and saves; the number of
    the signal that cut them short, or None."""
    bar = tqdm(range(start, opt.niter), initial=start, total=opt.niter, dynamic_ncols=True)
    tic = time.time()
    try:
        for step in bar:
            values = trainer.step(step)
            done = step + 1
            if done % opt.print_freq == 0 or done == opt.niter:
                ips = opt.batchSize * (done - start) / (time.time() - tic)
                trainer.scalars(done, {**{f"loss/{k}": v for k, v in values.items()},
                                       **trainer.sess.run(trainer.g.logged)})
                trainer.write_log(f"step {done}: " + " ".join(f"{k} {v:.4f}" for k, v in
                                                                values.items()) + f" ({ips:.2f} img/s)")
                bar.set_postfix({k: f"{v:.3g}" for k, v in values.items()})
            if done % opt.val_freq == 0 or done == opt.niter:
                trainer.validate(done)
            if done % opt.save_freq == 0:
                trainer.save(done)
    except Interrupted as err:
        print("\ninterrupted: saving")
        return err.signum
    return None


def main(argv: list[str] | None = None) -> None:
    options = TrainOptions()
    opt = options.parse(argv)
    try:
        distribute.check_options(opt)
        train_paths, val_paths, resume = check_inputs(opt)
        if resume:
            check_fit(opt, resume, "--continue_train:")
        if opt.pretrained and not resume:   # a new run, or one that saved nothing yet
            opt = pretrained_options(opt)
        val = validation_set(opt, val_paths)
    except (data.DataError, FileExistsError, FileNotFoundError, ValueError) as err:
        sys.exit(f"error: {err}")
    opt = distribute.worker_run_dir(opt)
    os.makedirs(opt.run_dir, exist_ok=True)
    try:   # opt.txt once the run has started: a resume that does not fit keeps the run's own
        train(opt, train_paths, val, resume, lambda: options.save(opt))
    except (data.DataError, ResumeError) as err:   # the parsing ground truth or the data
        sys.exit(f"error: {err}")
    except Interrupted as err:   # a second Ctrl-C during the final save
        sys.exit(128 + err.signum)
    finally:
        distribute.finish(opt)


if __name__ == "__main__":
    main()
