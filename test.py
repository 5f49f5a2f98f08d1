"""Evaluate EIPNet (paper Section 4.3), JEANet (--model jeanet) or the prior-guided models
(--model prior_guided, prior_guided_gan): super-resolve a folder of faces and score them.

    python test.py --weight_path checkpoint/eipnet_lfw128 --test_path datasets/test

An HR image (at least 128x128; any size but the LR size with --input auto) is cropped with the
--dataset preset, degraded to the LR size, 16x16 (32x32 for a --scale 4 EIPNet), by
--degradation (default: bilinear 128->64->32->16, as in training), super-resolved and scored
against itself, with bicubic upscaling as the baseline. An image of the LR size is LR: it is
only super-resolved. Other images are skipped with a note, as are unreadable files.
Writes to --result_dir (default: result/ beside the weights; a new folder, or one of test.py's:
result_folders.py; <stem> is the file name without its extension, or with it when two files
share a stem): <stem>_SR.png, <stem>_bicubic.png, <stem>_edge{32,64,128}.png (<stem>_coarse.png and <stem>_parsing.png for
the prior-guided models), <stem>_compare.png, metrics.csv (one row per image), summary.json and
summary.md (Tables 6-9 of the paper, printed at the end). The architecture options a checkpoint
fixes (EIPNet's tail, the edge blocks, JEANet's shortcuts) are read from it.
"""
from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import sys

import cv2
import numpy as np
from tqdm import tqdm

import checkpoints
import data
from evaluation import metrics, scoring
from evaluation.scoring import METHODS, Reference, Sample, needs_box
from networks import generators, identity, lpips_tf, perceptual, prior_guided
from networks.restored import Generator
from options.test_options import TestOptions
from result_folders import output_stems
import result_folders

NAMES = {"hr": "HR", "bicubic": "Bicubic"}   # and "sr": the model's title, see method_names
# csv metric -> the --metrics group that switches it on (in Table 6-8 order)
METRIC_GROUP = {"psnr": "psnr", "fr_psnr": "fr", "ssim": "ssim", "fr_ssim": "fr", "vif": "vif",
                "dist_algorithm": "tar", "dist_network": "tar", "brisque": "brisque",
                "lpips": "lpips"}
QUALITY = {"psnr": "PSNR", "fr_psnr": "FR-PSNR", "ssim": "SSIM", "fr_ssim": "FR-SSIM",
           "vif": "VIF", "lpips": "LPIPS"}
TAR_KINDS = (("algorithm", "tar_algorithm"), ("network", "tar_network"))


def method_names(model_name: str) -> dict:
    return {**NAMES, "sr": generators.GENERATORS[model_name].title}


def wanted_metrics(opt) -> list[str]:
    """The csv metrics of --metrics; LPIPS whenever --lpips_weights is given (checked here)."""
    unknown = set(opt.metrics) - set(METRIC_GROUP.values())
    if unknown:
        raise ValueError(f"unknown --metrics {sorted(unknown)}; choose from "
                         f"{sorted(set(METRIC_GROUP.values()))}")
    groups = set(opt.metrics) | ({"lpips"} if opt.lpips_weights else set())
    if "lpips" in groups and not opt.lpips_weights:
        raise ValueError("--metrics lpips needs --lpips_weights FILE (docs/evaluation.md, \"LPIPS\")")
    if opt.input == "lr":
        return []
    if opt.lpips_weights:
        lpips_model(opt.lpips_weights)   # a bad file stops before the model is loaded
    return [m for m, group in METRIC_GROUP.items() if group in groups]


@functools.lru_cache(maxsize=1)
def lpips_model(path: str) -> lpips_tf.LPIPS:
    return lpips_tf.LPIPS(path)


def columns(wanted: list[str]) -> list[str]:
    cols = ["file", "input"] + (["face_box"] if needs_box(wanted) else [])
    for m in wanted:
        cols += [f"{m}_{method}" for method in METHODS + (("hr",) if m == "brisque" else ())]
    return cols


def load_sample(path: str, opt, stem: str | None = None) -> Sample:
    """Raises DataError for an unreadable file, an LR image that is not s x s (s = 16, 32 at
    --scale 4), or an image too small to be an HR reference (smaller than the 128x128 output
    and not s x s). `stem` names the outputs (default: the file name without its extension)."""
    img = data.read_image(path)
    name = os.path.basename(path)
    stem = stem or os.path.splitext(name)[0]
    h, w = img.shape[:2]
    s = generators.lr_size(opt)
    is_lr = (h, w) == (s, s)
    if opt.input == "lr" and not is_lr:
        raise data.DataError(f"{path!r} is {w}x{h}, not {s}x{s}: pass "
                             f"--input hr to degrade it, or resize it to {s}x{s}")
    if opt.input == "lr" or (opt.input == "auto" and is_lr):
        return Sample(name, stem, img, None)
    if is_lr:
        raise data.DataError(f"{path!r} is {w}x{h}, an LR face, not an HR reference: pass "
                             f"--input auto (or lr) to super-resolve it only")
    side = data.preset_side(h, w, opt.dataset) or min(h, w)
    if side < data.HR_SIZE:   # upscaled, it would be a blurred reference
        crop = "" if side == min(h, w) else f" (its --dataset {opt.dataset} crop {side}x{side})"
        raise data.DataError(f"{path!r} is {w}x{h}{crop}, smaller than the {data.HR_SIZE}x"
                             f"{data.HR_SIZE} output, so it cannot be an HR reference: give HR "
                             f"faces of at least {data.HR_SIZE}x{data.HR_SIZE}, or {s}x{s} LR "
                             f"faces to super-resolve only")
    if opt.dataset == "aligned" and h != w:
        tqdm.write(f"note: {path!r} is {w}x{h}: --dataset aligned resizes it to "
                   f"{data.HR_SIZE}x{data.HR_SIZE}, not keeping its aspect; crop it square first")
    hr = data.preset_crop(img, opt.dataset, opt.hr_resize)
    lr = data.downscale(hr, opt.degradation, size=s)
    return Sample(name, stem, lr, hr, data.file_digest(path))


def load_samples(paths: list[str], opt, stems: dict[str, str],
                 skipped: list[str]) -> list[Sample]:
    samples = []
    for path in paths:
        try:
            samples.append(load_sample(path, opt, stems[os.path.basename(path)]))
        except data.DataError as err:
            tqdm.write(f"skipping {err}")
            skipped.append(os.path.basename(path))
    return samples


def bicubic(lr: np.ndarray) -> np.ndarray:
    return metrics.to_uint8(cv2.resize(lr.astype(np.float32), (data.HR_SIZE, data.HR_SIZE),
                                       interpolation=cv2.INTER_CUBIC))


def network_rows(facenet: metrics.FaceNet | None, samples: list[Sample], outputs: dict,
                 wanted: list[str], lpips_weights: str | None,
                 references: list[Reference | None]) -> tuple[list[dict], list]:
    """The TensorFlow metrics of each sample, batched here rather than in the workers:
    dist_network_<method> (FaceNet squared-L2 distance to HR) and lpips_<method> (none for LR
    inputs). A face with a Reference has its bicubic fields there, so only SR is run. SR is
    embedded in a batch of its own, cached or not, so a rerun gives the same SR vectors.
    Also returns HR's FaceNet vector of each face without a Reference (else None)."""
    rows, hr_vectors = [{} for _ in samples], [None] * len(samples)
    scored = [i for i, s in enumerate(samples) if s.hr is not None]
    fresh = [i for i in scored if references[i] is None]
    if not scored:
        return rows, hr_vectors
    if "dist_network" in wanted:
        sr = facenet(np.stack([outputs["sr"][i] for i in scored]))
        if fresh:
            new = facenet(np.stack([samples[i].hr for i in fresh] +
                                   [outputs["bicubic"][i] for i in fresh]))
            bicubic_dist = metrics.squared_distances(new[len(fresh):], new[:len(fresh)])
            for j, i in enumerate(fresh):
                hr_vectors[i] = new[j]
                rows[i]["dist_network_bicubic"] = float(bicubic_dist[j])
        hr = np.stack([hr_vectors[i] if references[i] is None else references[i].hr_facenet
                       for i in scored])
        for i, d in zip(scored, metrics.squared_distances(sr, hr)):
            rows[i]["dist_network_sr"] = float(d)
    if "lpips" in wanted:
        lpips = lpips_model(lpips_weights)
        for m, faces in (("sr", scored), ("bicubic", fresh)):
            if faces:
                got = lpips(np.stack([outputs[m][i] for i in faces]),
                            np.stack([samples[i].hr for i in faces]))
                for i, d in zip(faces, got):
                    rows[i][f"lpips_{m}"] = float(d)
    return rows, hr_vectors


def face_tasks(samples: list[Sample], gen: Generator, wanted: list[str], opt, out_dir: str,
               cache: scoring.ReferenceCache) -> tuple[list[scoring.FaceTask], dict]:
    """SR of a batch and a metric-worker task per face, with the face's cached Reference if
    there is one (then only SR is scored); also the methods' outputs {method: [uint8 image]}."""
    rgb, extras = gen(np.stack([s.lr for s in samples]))
    # scored as saved: clipped and rounded to 8 bits
    outputs = {"sr": [metrics.to_uint8(x) for x in rgb],
               "bicubic": [bicubic(s.lr) for s in samples]}
    cached = cache.get([s.digest for s in samples if s.hr is not None and wanted])
    tasks = [scoring.FaceTask(s, {m: outputs[m][i] for m in METHODS},
                                 {tag: x[i] for tag, x in extras.items()}, wanted, opt.y_channel,
                                 out_dir, not opt.no_figures, method_names(opt.model),
                                 cached.get(s.digest))
             for i, s in enumerate(samples)]
    return tasks, outputs


def evaluate(opt, gen: Generator, pool: scoring.FacePool, paths: list[str],
             wanted: list[str], out_dir: str, facenet: metrics.FaceNet | None,
             log: scoring.CsvLog, cache: scoring.ReferenceCache) -> list[str]:
    """The generator batch by batch here; each face's CPU metrics and images in --workers
    processes, which start on a batch while FaceNet (and LPIPS) run on it here. Rows go to
    metrics.csv in file order as they are done, and the References of faces not yet in the
    cache go to the cache. Faces already in the csv (--resume) are skipped. Returns the
    unreadable files."""
    todo = [p for p in paths if os.path.basename(p) not in log.done]
    if log.done:
        print(f"resuming: {len(log.done)} faces already in metrics.csv, {len(todo)} to go")
    skipped = []
    stems = output_stems([os.path.basename(p) for p in paths])
    fields = {}     # file name -> its FaceNet/LPIPS csv fields
    to_cache = {}   # file name -> (digest, HR FaceNet vector) of faces scored afresh
    with tqdm(total=len(todo), unit="face", dynamic_ncols=True) as bar:
        def record(done):
            for scored in done:
                row = {**scored.row, **fields.pop(scored.row["file"])}
                log.write(row)
                if row["file"] in to_cache:
                    digest, vector = to_cache.pop(row["file"])
                    cache.put(digest, scoring.reference_of(row, scored.hr_code, vector))
                bar.update(1)
            cache.commit()
        for batch in data.iterate_batches(todo, opt.batchSize):
            samples = load_samples(batch, opt, stems, skipped)
            bar.update(len(batch) - len(samples))
            if not samples:
                continue
            tasks, outputs = face_tasks(samples, gen, wanted, opt, out_dir, cache)
            for task in tasks:
                pool.submit(task)
            network, vectors = network_rows(facenet, samples, outputs, wanted,
                                            opt.lpips_weights, [t.reference for t in tasks])
            for s, task, extra, vector in zip(samples, tasks, network, vectors):
                fields[s.name] = extra
                if task.reference is None and s.hr is not None and wanted:
                    to_cache[s.name] = (s.digest, vector)
            record(pool.due())
        record(pool.drain())
    return skipped


def column(rows: list[dict], key: str) -> list[float]:
    """The values of one metric over the rows that have it (FR metrics skip faceless images)."""
    return [r[key] for r in rows if r.get(key) is not None]


def mean_of(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def tar_rows(rows: list[dict], kind: str, thresholds: list[float]) -> list[dict]:
    """Eq 12 per threshold over the n_all scored images (a face dlib misses is not accepted),
    and as an extra `<method>_detected_only` over the n_detected images with a distance."""
    scored = [r for r in rows if r["input"] == "hr"]
    dists = {m: [r.get(f"dist_{kind}_{m}") for r in scored] for m in METHODS}
    counts = {"": len(scored), "_detected_only": len(column(scored, f"dist_{kind}_sr"))}
    return [{"threshold": d, "n_all": counts[""], "n_detected": counts["_detected_only"],
             **{m + suffix: metrics.tar(v, d, bool(suffix)) if n else None
                for m, v in dists.items() for suffix, n in counts.items()}}
            for d in thresholds]


def summarize(rows: list[dict], skipped: list[str], wanted: list[str], opt,
              complexity: dict) -> dict:
    """Means (with the number of images each used), TAR rows, counts and complexity."""
    means = {}
    for m in wanted:
        methods = METHODS + (("hr",) if m == "brisque" else ())
        means[m] = {k: mean_of(column(rows, f"{m}_{k}")) for k in methods}
        means[m]["n"] = len(column(rows, f"{m}_sr"))
    tar = ({kind: tar_rows(rows, kind, getattr(opt, option)) for kind, option in TAR_KINDS}
           if "dist_algorithm" in wanted else {})
    scored = [r for r in rows if r["input"] == "hr" and wanted]
    return {
        "model": opt.model, "weights": opt.weight_path, "y_channel": opt.y_channel,
        "degradation": opt.degradation, "scale": opt.scale,
        "images": {"total": len(rows) + len(skipped), "scored": len(scored),
                   "lr_only": sum(r["input"] == "lr" for r in rows), "skipped": skipped,
                   "no_face": sum("face_box" not in r for r in scored)
                   if needs_box(wanted) else None},
        "metrics": means, "tar": tar, "complexity": complexity,
    }


def measure_complexity(opt, gen: Generator) -> dict:
    info = {**metrics.generator_complexity(gen.build, gen.lr_size),
            "precision": opt.precision, "fps_batch1": None, "fps_batch16": None}
    if opt.fps:
        rng = np.random.default_rng(0)
        for b in (1, 16):
            lr = rng.uniform(0, 255, (b, gen.lr_size, gen.lr_size, 3))
            info[f"fps_batch{b}"] = metrics.fps(lambda: gen(lr), b)
    return info


def fmt(value, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def markdown(summary: dict) -> str:
    """Tables 6-9 of the paper from the summary."""
    means, tar, cx = summary["metrics"], summary["tar"], summary["complexity"]
    img, names = summary["images"], method_names(summary["model"])
    parts = [f"# {names['sr']} evaluation\n\nweights: `{summary['weights']}`; images: "
             f"{img['total']} ({img['scored']} scored, {img['lr_only']} LR only, "
             f"{len(img['skipped'])} skipped: {', '.join(img['skipped']) or 'none'}); no face detected: "
             f"{fmt(img['no_face'], 0)}; LR by {summary.get('degradation', 'bilinear_chain')}"]
    if summary.get("l_vgg") == "facenet":   # never let the stand-in pass for VGG19
        parts.append(f"L_vgg in training: {perceptual.STAND_IN}, not VGG19 (no --vgg19_weights)")
    quality = [m for m in QUALITY if m in means]
    if quality:
        digits = {m: 2 if "psnr" in m else 4 for m in quality}
        rows = [[names[k]] + [fmt(means[m][k], digits[m]) for m in quality] for k in
                ("bicubic", "sr")]
        rows.append(["images"] + [str(means[m]["n"]) for m in quality])
        space = " (Y channel)" if summary["y_channel"] else " (RGB)"
        parts.append("## Table 6: quality" + space + "\n\n" +
                     md_table(["method"] + [QUALITY[m] for m in quality], rows))
    if tar:
        # (header, row of tar_rows, key suffix, count): Eq 12's TAR, and for the algorithm (dlib
        # detects the face first) the share among detected faces as an extra column
        cells = [(f"TAR {kind} d={t['threshold']:g}", t, "", "n_all")
                 for kind, _ in TAR_KINDS for t in tar[kind]]
        cells += [(f"TAR algorithm d={t['threshold']:g}, detected faces only", t,
                   "_detected_only", "n_detected") for t in tar["algorithm"]]
        rows = [[names[k]] + [fmt(None if t[k + sfx] is None else 100 * t[k + sfx], 1)
                              for _, t, sfx, _ in cells] for k in ("bicubic", "sr")]
        rows.append(["images"] + [str(t[n]) for _, t, _, n in cells])
        parts.append("## Table 7: true acceptance rate (%), Eq 12: N_TA / N_ALL\n\n" +
                     md_table(["method"] + [c[0] for c in cells], rows))
    if "brisque" in means:
        b = means["brisque"]
        parts.append("## Table 8: BRISQUE (lower is better)\n\n" + md_table(
            ["method", "BRISQUE"], [[names[k], fmt(b[k], 2)] for k in ("hr", "bicubic", "sr")]
            + [["images", str(b["n"])]]))
    parts.append("## Table 9: complexity\n\n" + md_table(
        ["params (M)", "GMACs / image", "FPS batch 1", "FPS batch 16", "precision"],
        [[fmt(cx["params"] / 1e6, 2), fmt(cx["gmacs"], 2), fmt(cx["fps_batch1"], 1),
          fmt(cx["fps_batch16"], 1), cx["precision"]]]))
    return "\n\n".join(parts) + "\n"


def write_summary(summary: dict, out_dir: str) -> str:
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    text = markdown(summary)
    with open(os.path.join(out_dir, "summary.md"), "w") as f:
        f.write(text)
    return text


# the distributions a cached Reference depends on; where a build has its own name (dlib-bin,
# opencv-python-headless, tensorflow-cpu) the first one installed counts
CACHE_DISTRIBUTIONS = ("numpy", "pillow", "scipy", "scikit-image", "brisque", "libsvm-official",
                       "face-recognition-models", ("dlib-bin", "dlib"),
                       ("opencv-python-headless", "opencv-python"),
                       ("tensorflow-cpu", "tensorflow"))


def installed_version(names: str | tuple[str, ...]) -> str | None:
    for name in (names,) if isinstance(names, str) else names:
        try:
            return f"{name} {importlib.metadata.version(name)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def reference_settings(opt, wanted: list[str]) -> dict:
    """Everything a face's Reference depends on besides its image file: the ReferenceCache key."""
    settings = {"dataset": opt.dataset, "hr_resize": opt.hr_resize,
                "degradation": opt.degradation, "scale": opt.scale, "y_channel": opt.y_channel, "metrics": wanted,
                "versions": [installed_version(d) for d in CACHE_DISTRIBUTIONS]}
    if opt.degradation == "photo":   # its LR follows the ranges in the code
        settings["photo"] = data.PHOTO._asdict()
    if "dist_network" in wanted:
        settings["facenet"] = data.file_digest(identity.default_graph_path())
    if "lpips" in wanted:
        settings["lpips"] = data.file_digest(opt.lpips_weights)
    return settings


def scoring_settings(opt, prefix: str) -> dict:
    """What every row of one metrics.csv shares, by option name (--resume checks them); the
    weights by the digest of their index, which holds the checksums of their data."""
    return {"model": opt.model, "weight_path": f"index sha1 {data.file_digest(prefix + '.index')}",
            "precision": opt.precision, "dataset": opt.dataset, "hr_resize": opt.hr_resize,
            "degradation": opt.degradation, "y_channel": opt.y_channel, "input": opt.input,
            "test_path": os.path.realpath(opt.test_path),
            "lpips_weights": opt.lpips_weights and f"sha1 {data.file_digest(opt.lpips_weights)}"}


def open_cache(opt, wanted: list[str]) -> scoring.ReferenceCache:
    path = None if opt.eval_cache.lower() == "none" or not wanted else opt.eval_cache
    return scoring.ReferenceCache(path, reference_settings(opt, wanted) if path else {})


def output_folder(opt, prefix: str) -> str:
    """--result_dir, by default the result folder beside the weights (result_folders.beside),
    claimed under result_folders' rule before any model is loaded (FolderError otherwise)."""
    out_dir = opt.result_dir or result_folders.beside(prefix, "result")
    return result_folders.claim(out_dir, "test.py", "--result_dir", {"--test_path": opt.test_path},
                                legacy=("metrics.csv",))


def main(argv: list[str] | None = None) -> dict:
    opt = TestOptions().parse(argv)
    try:
        wanted = wanted_metrics(opt)
        prefix = checkpoints.intact(checkpoints.resolve(opt.weight_path))
        paths = data.list_images(opt.test_path)
        out_dir = output_folder(opt, prefix)
    except (FileNotFoundError, data.DataError, ValueError) as err:
        sys.exit(f"error: {err}")
    # the workers start (importing the metric libraries, loading their models) while the
    # generator and FaceNet load here
    with scoring.FacePool(opt.workers, 2 * opt.batchSize, wanted) as pool:
        try:
            gen = Generator(opt, prefix)
            # once the weights fit: a run that stops on them keeps the folder's last results
            log = scoring.CsvLog(os.path.join(out_dir, "metrics.csv"), columns(wanted),
                                 opt.resume, scoring_settings(opt, prefix))
        except ValueError as err:
            sys.exit(f"error: {err}")
        opt = gen.options
        cache = open_cache(opt, wanted)
        # FaceNet stays fp32 whatever --precision: the metric must not move with the SR precision
        facenet = metrics.FaceNet(batch=3 * opt.batchSize) if "dist_network" in wanted else None
        skipped = evaluate(opt, gen, pool, paths, wanted, out_dir, facenet, log, cache)
    log.close()
    cache.close()
    if facenet:
        facenet.close()
    rows = scoring.read_rows(log.path)   # the summary of a resumed run is that of one run
    if not rows:
        gen.close()
        sys.exit(f"error: no readable image in {opt.test_path!r} (see the messages above); "
                 f"put face images there or point --test_path at another folder")
    summary = summarize(rows, skipped, wanted, opt, measure_complexity(opt, gen))
    design = prior_guided.design_of(prefix)   # the prior-guided models record L_vgg's features
    summary["l_vgg"] = design.l_vgg if design else None
    gen.close()
    print(write_summary(summary, out_dir))
    print(f"results in {out_dir}")
    return summary


if __name__ == "__main__":
    main()
