"""Data preparation on real faces: reading and conversion, presets, augmentation, the
degradations (the chain, bicubic, photo: alone, in test.py and in a train.py run) and the
threaded loader's handling of bad files."""
import csv
import warnings

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage.restoration import estimate_sigma

import data
from evaluation import metrics
import test as test_script
import train
from conftest import SHARED, copy_faces, train_args

pytestmark = pytest.mark.cpu_numbers   # reruns under tools/avx2_caps.py in .ci/run


def test_degrade_is_progressive_bilinear(val_faces):
    chain = data.degrade(val_faces[0])
    assert [c.shape for c in chain] == [(128, 128, 3), (64, 64, 3), (32, 32, 3), (16, 16, 3)]
    want = val_faces[0]
    for got in chain[1:]:
        want = cv2.resize(want, (want.shape[0] // 2,) * 2, interpolation=cv2.INTER_LINEAR)
        np.testing.assert_array_equal(got, want)
    ex = data.make_example(val_faces[0])
    assert ex.lr.shape == (16, 16, 3) and ex.lr.dtype == np.float32
    assert [e.shape for e in ex.edges] == [(32, 32, 1), (64, 64, 1), (128, 128, 1)]


def pil_bicubic(img: np.ndarray, size: int) -> np.ndarray:
    """PIL's BICUBIC resize (antialiased, a = -0.5) of each channel as a float image."""
    return np.stack([np.asarray(Image.fromarray(img[..., c].astype(np.float32), "F").resize(
        (size, size), Image.BICUBIC)) for c in range(3)], axis=-1)


def test_bicubic_x8_matches_pil_and_differs_from_the_chain(val_faces):
    """The thesis's "down-scale by the factor of 8" (--degradation bicubic): one antialiased
    bicubic resize, as PIL (and MATLAB's imresize) compute it, on real faces; the LR that
    make_example and the loader's examples carry; the Canny targets still come from the chain."""
    for face in val_faces[:4]:
        lr = data.downscale(face, "bicubic")
        assert lr.shape == (16, 16, 3) and lr.dtype == np.uint8
        assert np.abs(lr - pil_bicubic(face, 16)).max() <= 0.5 + 1e-3   # rounding only
        assert np.abs(lr.astype(int) - data.downscale(face)).mean() > 1   # not the chain
    ex = data.make_example(val_faces[0], degradation="bicubic")
    np.testing.assert_array_equal(ex.lr, data.bicubic_downscale(val_faces[0]))
    np.testing.assert_array_equal(ex.edges[0], data.make_example(val_faces[0]).edges[0])
    np.testing.assert_array_equal(data.downscale(val_faces[0], "bilinear_chain"),
                                  data.degrade(val_faces[0])[-1])
    with pytest.raises(ValueError, match="choose from"):
        data.downscale(val_faces[0], "nearest")


OFF = data.PhotoRanges(face=(16, 16), blur=(0.0, 0.0), noise=(0.0, 0.0), jpeg_p=0.0)


def test_photo_shapes_and_seeds(val_faces):
    """Random per draw, reproducible by seed; without a generator, by the image (test.py)."""
    for face in val_faces[:4]:
        lr = data.photo_downscale(face, np.random.default_rng(1))
        assert lr.shape == (16, 16, 3) and lr.dtype == np.uint8
        np.testing.assert_array_equal(lr, data.photo_downscale(face, np.random.default_rng(1)))
        assert data.photo_downscale(face, np.random.default_rng(1), size=32).shape == (32, 32, 3)
        np.testing.assert_array_equal(data.downscale(face, "photo"),
                                      data.downscale(face.copy(), "photo"))
    others = [data.photo_downscale(f, np.random.default_rng(2)) for f in val_faces[:4]]
    ones = [data.photo_downscale(f, np.random.default_rng(1)) for f in val_faces[:4]]
    assert not any(np.array_equal(a, b) for a, b in zip(ones, others))
    ex = data.make_example(val_faces[0], degradation="photo")
    np.testing.assert_array_equal(ex.lr, data.downscale(val_faces[0], "photo"))


def test_photo_with_every_step_off_is_the_area_downscale(val_faces):
    for face in val_faces[:4]:
        for size in (16, 32):
            off = OFF._replace(face=(size, size))
            np.testing.assert_array_equal(
                data.photo_downscale(face, np.random.default_rng(0), size, off),
                cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA))


def ycrcb(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb).astype(np.float64)


def laplacian_energy(channel: np.ndarray) -> float:
    return float(cv2.Laplacian(channel, cv2.CV_64F).var())


def test_photo_blur_and_small_faces_remove_detail(val_faces):
    """A blur, or a face smaller than the LR size (interpolated up), leaves less detail."""
    rng = np.random.default_rng(0)
    for face in val_faces[:4]:
        area, blurred, small = (
            laplacian_energy(ycrcb(data.photo_downscale(face, rng, 16, ranges))[..., 0])
            for ranges in (OFF, OFF._replace(blur=(0.7, 0.7)), OFF._replace(face=(10, 10))))
        assert blurred < 0.6 * area and small < 0.6 * area


def test_photo_noise_raises_the_noise_estimate_by_its_sigma(val_faces):
    """skimage's estimate of the noise on the luma grows by the drawn sigma (added in
    quadrature), and the noise is the same in the three channels (no colour noise)."""
    rng = np.random.default_rng(0)
    for sigma in (2.0, 5.0, 10.0):
        added = []
        for face in val_faces:
            noisy = data.add_noise(face, sigma, rng)
            added.append(np.sqrt(estimate_sigma(ycrcb(noisy)[..., 0]) ** 2 -
                                 estimate_sigma(ycrcb(face)[..., 0]) ** 2))
            inside = (noisy > 0).all(-1) & (noisy < 255).all(-1)   # not clipped
            diff = noisy.astype(int) - face
            assert (diff[inside] == diff[inside][:, :1]).all()
        assert np.median(added) == pytest.approx(sigma, rel=0.12)


def block_edges(img: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The mean jump of the error out - img between columns x and x+1, by x mod 8."""
    jumps = np.abs(np.diff(out.astype(np.float64) - img, axis=1)).mean(axis=(0, 2))
    return np.array([jumps[p::data.JPEG_BLOCK].mean() for p in range(data.JPEG_BLOCK)])


def test_photo_jpeg_makes_blocks_on_its_shifted_grid(val_faces):
    """JPEG's 8x8 blocks show as jumps of the error at the grid's columns, moved by the shift;
    in the photo degradation it removes chroma detail (4:2:0) as at 75 in the real photos."""
    for shift, column in (((0, 0), 7), ((3, 5), 2)):   # the jump between x = 7-5 and 8-5
        edges = np.mean([block_edges(f, data.jpeg(f, 30, shift)) for f in val_faces], axis=0)
        assert edges.argmax() == column and edges[column] > 1.4 * np.delete(edges, column).mean()
    jpeg_on = OFF._replace(jpeg=(75, 75), jpeg_p=1.0)
    for face in val_faces[:4]:
        plain = data.photo_downscale(face, np.random.default_rng(0), 16, OFF)
        coded = data.photo_downscale(face, np.random.default_rng(0), 16, jpeg_on)
        chroma = [laplacian_energy(ycrcb(x)[..., 1]) for x in (plain, coded)]
        assert chroma[1] < 0.5 * chroma[0]


def test_photo_loader_is_reproducible_by_seed(val_paths):
    def first_lr(seed: int) -> np.ndarray:
        loader = data.BatchLoader(val_paths[:8], batch_size=4, threads=1, seed=seed,
                                  degradation="photo")
        lr = loader.next().lr
        loader.close()
        return lr
    np.testing.assert_array_equal(first_lr(3), first_lr(3))
    assert not np.array_equal(first_lr(3), first_lr(4))


def test_test_py_photo_gives_the_same_metrics_every_run(tmp_path, val_paths):
    """test.py --degradation photo: two runs (no cache) write the same metrics.csv, its
    bicubic PSNR that of data.downscale(hr, "photo")."""
    faces = copy_faces(val_paths[:3], tmp_path / "faces")
    texts = []
    for k in range(2):
        out = tmp_path / f"result{k}"
        test_script.main(["--test_path", str(faces), "--result_dir", str(out), "--degradation",
                          "photo", "--metrics", "psnr", "--no_figures", "--eval_cache", "none"])
        texts.append((out / "metrics.csv").read_text())
    assert texts[0] == texts[1]
    for row in csv.DictReader(texts[0].splitlines()):
        hr = data.read_image(str(faces / row["file"]))
        want = metrics.psnr(test_script.bicubic(data.downscale(hr, "photo")), hr)
        assert float(row["psnr_bicubic"]) == pytest.approx(want)


def test_train_py_runs_with_photo(dataset, tmp_path):
    train.main(train_args(dataset, tmp_path, "--degradation", "photo", "--niter", "2",
                          "--save_freq", "2", "--val_freq", "2", "--loader_threads", "1"))
    run = tmp_path / "run"
    assert "degradation: photo" in (run / "opt.txt").read_text()
    assert "step 2:" in (run / "loss_log.txt").read_text()


def test_presets(val_faces):
    face = val_faces[0]
    big = cv2.resize(face, (178, 178), interpolation=cv2.INTER_LINEAR)
    celeba = np.zeros((218, 178, 3), np.uint8)
    celeba[20:198] = big                      # an aligned CelebA frame: face in the centre
    np.testing.assert_array_equal(data.preset_crop(celeba, "celeba"),
                                  cv2.resize(big, (128, 128), interpolation=cv2.INTER_LINEAR))
    cubic = data.preset_crop(celeba, "celeba", "bicubic")   # JEANet's HR resize
    np.testing.assert_array_equal(cubic,
                                  cv2.resize(big, (128, 128), interpolation=cv2.INTER_CUBIC))
    assert not np.array_equal(cubic, data.preset_crop(celeba, "celeba"))
    vgg = np.zeros((300, 200, 3), np.uint8)
    vgg[80:220, 30:170] = cv2.resize(face, (140, 140))  # 0.7 x 200 = 140 centred
    out = data.preset_crop(vgg, "vggface2")
    assert out.shape == (128, 128, 3)
    assert out.min(axis=2).mean() > 20        # nothing of the black border survives
    np.testing.assert_array_equal(data.preset_crop(face, "aligned"), face)
    with pytest.raises(ValueError, match="preset"):
        data.preset_crop(face, "ffhq")


def test_augment_flips_and_rotations(val_faces):
    face = val_faces[0]
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(64):
        out = data.augment(face, rng, (90, 270))
        for k, name in [(0, "id"), (1, "r90"), (3, "r270")]:
            for flip in (False, True):
                src = face[:, ::-1] if flip else face
                if np.array_equal(out, np.rot90(src, k)):
                    seen.add((name, flip))
    # identity/flip, and both paper rotations, each with and without flip; never 180
    assert seen == {(n, f) for n in ("id", "r90", "r270") for f in (False, True)}


def write_bad_files(folder, face):
    Image.fromarray(face).convert("L").save(folder / "gray.png")
    Image.fromarray(np.dstack([face, np.full(face.shape[:2], 255, np.uint8)])).save(folder / "rgba.png")
    Image.fromarray((face[..., 0].astype(np.uint16) * 257)).save(folder / "deep16.png")
    ok, jpg = cv2.imencode(".jpg", face)
    (folder / "truncated.jpg").write_bytes(jpg.tobytes()[:len(jpg) // 2])
    (folder / "notes.jpg").write_text("not an image")


def test_read_image_converts_and_rejects(tmp_path, val_faces):
    face = val_faces[0]
    write_bad_files(tmp_path, face)
    gray = data.read_image(str(tmp_path / "gray.png"))
    assert gray.shape == (128, 128, 3) and np.array_equal(gray[..., 0], gray[..., 2])
    np.testing.assert_array_equal(data.read_image(str(tmp_path / "rgba.png")), face)
    deep = data.read_image(str(tmp_path / "deep16.png"))
    assert deep.dtype == np.uint8
    np.testing.assert_allclose(deep[..., 0], face[..., 0], atol=1)
    for name in ("truncated.jpg", "notes.jpg"):
        with pytest.raises(data.DataError, match=name):
            data.read_image(str(tmp_path / name))


def test_read_image_turns_a_phone_photo_upright(tmp_path):
    """A photo stored sideways with EXIF orientation 6 (as phones save them; a viewer turns it
    90 degrees clockwise) reads as the viewer shows it: pixel for pixel the upright photo."""
    upright = Image.open(SHARED / "data" / "photos" / "2008_001009.jpg").convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6   # Orientation: rotate 90 CW to display
    upright.rotate(90, expand=True).save(tmp_path / "sideways.png", exif=exif)
    assert Image.open(tmp_path / "sideways.png").size == upright.size[::-1]
    np.testing.assert_array_equal(data.read_image(str(tmp_path / "sideways.png")),
                                  np.asarray(upright))


def test_read_image_scales_float_images_and_names_oversized_ones(tmp_path, val_faces,
                                                                monkeypatch):
    face = val_faces[0]
    Image.fromarray(face[..., 1].astype(np.float32) / 255).save(tmp_path / "float.tif")
    np.testing.assert_allclose(data.read_image(str(tmp_path / "float.tif"))[..., 1], face[..., 1],
                               atol=1)
    Image.fromarray(face).save(tmp_path / "face.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 128 * 128 // 3)   # Pillow's bomb: > 2x this
    with pytest.raises(data.DataError, match=r"cannot read image .*face.png.*exceeds limit"):
        data.read_image(str(tmp_path / "face.png"))


def test_missing_or_empty_folder(tmp_path):
    with pytest.raises(data.DataError, match="not found"):
        data.list_images(str(tmp_path / "nope"))
    with pytest.raises(data.DataError, match="no images"):
        data.list_images(str(tmp_path))


def test_loader_skips_bad_files(tmp_path, val_paths, val_faces):
    write_bad_files(tmp_path, val_faces[0])
    paths = data.list_images(str(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loader = data.BatchLoader(paths, batch_size=8, threads=1, seed=1)
        batches = [loader.next() for _ in range(4)]
        loader.close()
    named = " ".join(str(w.message) for w in caught)
    assert "truncated.jpg" in named and "notes.jpg" in named
    assert loader.bad == {str(tmp_path / "truncated.jpg"), str(tmp_path / "notes.jpg")}
    b = batches[0]
    assert b.hr.shape == (8, 128, 128, 3) and b.lr.shape == (8, 16, 16, 3)
    assert b.hr.max() > 100


def test_loader_reports_when_nothing_loads(tmp_path):
    (tmp_path / "a.jpg").write_text("x")
    loader = data.BatchLoader([str(tmp_path / "a.jpg")], batch_size=2, threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(data.DataError, match="every training image failed"):
            loader.next()
    loader.close()
