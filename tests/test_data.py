"""Data preparation on real faces: reading and conversion, presets, augmentation, the
degradation chain and the threaded loader's handling of bad files."""
import warnings

import cv2
import numpy as np
import pytest
from PIL import Image

import data

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
