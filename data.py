"""Data preparation (paper Section 4.2) in plain numpy/OpenCV: reading, preset crops,
augmentation, the degradations (the bilinear 128->64->32->16 chain, bicubic x8 or x4, and a random
photo-like one), Canny edge targets, and a threaded batch loader that keeps the training step
fed."""
from __future__ import annotations

import hashlib
import os
import queue
import threading
import warnings
from typing import Callable, Iterator, NamedTuple, Sequence

import cv2
import numpy as np
from PIL import Image, ImageOps

HR_SIZE = 128
LR_SIZE = 16      # at the paper's 8x
SCALES = (8, 4)   # 8x: the paper's 16 -> 128; 4x: 32 -> 128 (EIPNet --scale 4, ours)
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
PRESETS = ("celeba", "vggface2", "aligned")
# How a cropped face is resized to 128x128: bilinear as EIPNet's authors' code, bicubic as
# JEANet's Section IV-B ("reshape them to the size of 128x128 using the bicubic interpolation")
HR_RESIZE = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}
# Canny (low, high) thresholds on 0..255 gray: the paper's and the authors' code's.
CANNY_FIXED = {"paper": (100, 255), "authors": (50, 255)}
# Section 3.1's adaptive rule T = m + k sigma, read two ways (the text is at odds with itself):
# "adaptive" is Eq 1-2, T_h = m + k_h sigma and T_l = T_h / 2; "adaptive_k" is the sentence
# after Eq 2, "We set k to be 1.2 and 1.6 to obtain T_l and T_h", T_l = m + k_l sigma.
CANNY_MODES = (*CANNY_FIXED, "adaptive", "adaptive_k")
CANNY_K = (1.2, 1.6)   # (k_l, k_h), Section 3.1


def lr_size(scale: int) -> int:
    """The LR face's side at upscaling factor `scale` (SCALES)."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale}; choose from {SCALES}")
    return HR_SIZE // scale


class DataError(RuntimeError):
    """A dataset folder or file that cannot be used; the message names it and the fix."""


class Example(NamedTuple):
    hr: np.ndarray     # (128,128,3) float32 0..255
    lr: np.ndarray     # (16,16,3) float32 0..255 (32x32 at 4x)
    edges: tuple       # Canny targets (32,32,1), (64,64,1), (128,128,1), float32 0/255
    parsing: np.ndarray | None = None   # (128,128,11) float32 0..1 part maps (prior-guided)


def take(ex: Example, n: int) -> Example:
    """The first n examples of a stacked Example."""
    return Example(ex.hr[:n], ex.lr[:n], tuple(e[:n] for e in ex.edges),
                   None if ex.parsing is None else ex.parsing[:n])


def list_images(folder: str, option: str = "the path option (--train_path / --test_path)"
                ) -> list[str]:
    """Sorted image paths in `folder`; stops with a clear message naming `option` (the flag
    that named the folder) if there are none. Its subfolders are not read, and named."""
    if os.path.isfile(folder):
        raise DataError(f"{folder!r} is a file, not a folder: pass the folder that holds it")
    if not os.path.isdir(folder):
        raise DataError(f"image folder not found: {folder!r}. Put face images there or point "
                        f"{option} at your folder.")
    paths = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                   if f.lower().endswith(IMAGE_EXTS))
    subfolders = sorted(f for f in os.listdir(folder) if os.path.isdir(os.path.join(folder, f)))
    if subfolders:
        print(f"note: {len(subfolders)} subfolders of {folder!r} are not read "
              f"({', '.join(subfolders[:3])}{', ...' if len(subfolders) > 3 else ''})")
    if not paths:
        raise DataError(f"no images ({', '.join(IMAGE_EXTS)}) in {folder!r}. Put face images "
                        f"there or point {option} at another folder.")
    return paths


def file_digest(path: str) -> str:
    """The sha1 of a file's bytes: names one photo or weights file apart from another of the
    same name (prepare_data's manifest, test.py's recorded scoring settings)."""
    with open(path, "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()


def read_image(path: str) -> np.ndarray:
    """RGB uint8 (H,W,3), upright as a viewer shows it (the EXIF orientation of a phone's
    photo applied). Grayscale, palette, RGBA, 16-bit and float (0-1) files are converted; a
    truncated, non-image or oversized (Pillow's decompression-bomb limit) file raises DataError
    naming it."""
    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                arr = np.asarray(im).astype(np.float64)
                scale = (255.0 if im.mode == "F" and arr.max() <= 1 else
                         255.0 / 65535.0 if arr.max() > 255 else 1.0)
                im = Image.fromarray(np.clip(arr * scale, 0, 255).astype(np.uint8))
            return np.asarray(im.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(f"cannot read image {path!r} ({err}); remove or replace the file") from err


def preset_side(h: int, w: int, preset: str) -> int | None:
    """The side of the centre square `preset` crops from an h x w image (Section 4.2); None
    where it keeps the whole image."""
    if preset == "celeba":       # centre 178x178 of the 178x218 aligned CelebA image
        return min(h, w, 178)
    if preset == "vggface2":     # centre crop of 0.7 x the shorter side
        return int(round(0.7 * min(h, w)))
    if preset == "aligned":
        return None
    raise ValueError(f"unknown dataset preset {preset!r}; choose from {PRESETS}")


def preset_crop(img: np.ndarray, preset: str, resize: str = "bilinear") -> np.ndarray:
    """Crop as in Section 4.2 and resize to 128x128 with `resize` (HR_RESIZE)."""
    h, w = img.shape[:2]
    side = preset_side(h, w, preset)
    if side is not None:
        top, left = (h - side) // 2, (w - side) // 2
        img = img[top:top + side, left:left + side]
    if img.shape[:2] != (HR_SIZE, HR_SIZE):
        img = cv2.resize(img, (HR_SIZE, HR_SIZE), interpolation=HR_RESIZE[resize])
    return img


def augment(img: np.ndarray, rng: np.random.Generator, rotations: Sequence[int],
            mirror: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Horizontal flip with p = 0.5, then with p = 0.5 a rotation by one of `rotations`.
    `mirror` follows a flip: left and right part maps trade channels."""
    if rng.random() < 0.5:
        img = img[:, ::-1]
        if mirror is not None:
            img = mirror(img)
    if rotations and rng.random() < 0.5:
        img = np.rot90(img, k=int(rng.choice(rotations)) // 90)
    return np.ascontiguousarray(img)


def rescale(img: np.ndarray, rng: np.random.Generator, max_scale: float) -> np.ndarray:
    """JEANet's scale augmentation: zoom by s ~ U(1, max_scale) about the centre (bilinear),
    keeping the size, so the face grows while staying centred."""
    h, w = img.shape[:2]
    s = rng.uniform(1.0, max_scale)
    big = cv2.resize(img, (int(round(w * s)), int(round(h * s))), interpolation=cv2.INTER_LINEAR)
    top, left = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return big[top:top + h, left:left + w]


def cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic convolution kernel (a = -0.5: MATLAB's imresize, PIL's BICUBIC)."""
    x = np.abs(x)
    return np.where(x <= 1, (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1,
                    np.where(x < 2, a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a, 0.0))


def bicubic_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of an antialiased bicubic downscaling along one axis: the kernel
    stretched by the scale, pixel centres aligned, taps outside the image dropped and each row
    renormalised (MATLAB's imresize and PIL's convention)."""
    scale = n_in / n_out
    centres = (np.arange(n_out) + 0.5) * scale
    w = cubic((np.arange(n_in)[None, :] + 0.5 - centres[:, None]) / scale)
    return w / w.sum(axis=1, keepdims=True)


def bicubic_downscale(hr: np.ndarray, size: int = LR_SIZE) -> np.ndarray:
    """HR uint8 (H,W,3) -> (size,size,3) uint8 by one antialiased bicubic resize."""
    rows, cols = bicubic_matrix(hr.shape[0], size), bicubic_matrix(hr.shape[1], size)
    # optimize: two matrix products, not one naive triple loop (250x slower per image)
    out = np.einsum("ij,jkc,lk->ilc", rows, hr.astype(np.float64), cols, optimize=True)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# HR 128 -> LR 16: EIPNet's bilinear chain, the usual bicubic x8 (the prior-guided thesis's
# "down-scale by the factor of 8", Section 4.1), or "photo": a random blur, area downscale,
# noise and JPEG, for faces cut from real photographs (photo_downscale)
DEGRADATIONS = ("bilinear_chain", "bicubic", "photo")


class PhotoRanges(NamedTuple):
    """What photo_downscale draws per face, each uniformly in its range (the face's size
    log-uniformly). Measured on the small faces of real photographs by
    tools/degradation_check.py (docs/photos.md, "A photo degradation for training")."""
    face: tuple[int, int] = (10, 128)        # the face's side in the photo, px
    blur: tuple[float, float] = (0.0, 0.75)  # Gaussian sigma, in px of the face in the photo
    noise: tuple[float, float] = (0.0, 4.0)  # Gaussian noise sigma there, in 0..255 levels
    jpeg: tuple[int, int] = (55, 95)         # JPEG quality there (both ends drawn)
    jpeg_p: float = 0.5                      # how often the JPEG step happens


PHOTO = PhotoRanges()
JPEG_BLOCK = 8


def gaussian_blur(hr: np.ndarray, sigma: float, size: int) -> np.ndarray:
    """`hr` blurred by a Gaussian of `sigma` pixels of its `size` px downscale; sigma 0 leaves
    it as it is."""
    if sigma <= 0:
        return hr
    return cv2.GaussianBlur(hr, (0, 0), sigma * hr.shape[0] / size)


def area_downscale(img: np.ndarray, size: int = LR_SIZE) -> np.ndarray:
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def resize_face(img: np.ndarray, size: int) -> np.ndarray:
    """A face cut from a photo brought to `size` px as faces.aligned_crop does it: averaged
    down by area, or interpolated up (bicubic)."""
    if img.shape[0] >= size:
        return area_downscale(img, size)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC)


def add_noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """uint8 `img` plus Gaussian noise of `sigma` levels per pixel, the same in the three
    channels: real small faces show no colour noise (docs/photos.md)."""
    noisy = img + rng.normal(0.0, sigma, img.shape[:2])[..., None]
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray, quality: int, shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    """RGB uint8 `img` through OpenCV's JPEG at `quality`, its 8x8 block grid moved down and
    right by `shift` px (the border reflected to fill): in a photograph the grid falls anywhere
    on a face."""
    (dy, dx), (h, w) = shift, img.shape[:2]
    canvas = cv2.copyMakeBorder(img, dy, -(h + dy) % JPEG_BLOCK, dx, -(w + dx) % JPEG_BLOCK,
                                cv2.BORDER_REFLECT)
    code = cv2.imencode(".jpg", canvas[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])[1]
    return cv2.imdecode(code, cv2.IMREAD_COLOR)[dy:dy + h, dx:dx + w, ::-1]


def photo_downscale(hr: np.ndarray, rng: np.random.Generator, size: int = LR_SIZE,
                    ranges: PhotoRanges = PHOTO) -> np.ndarray:
    """HR uint8 -> (size,size,3) uint8 as a face cut from a photograph: Real-ESRGAN's
    first-order model in its order (blur, downscale, noise, JPEG) at the face's random size in
    the photo, then brought to `size` as enhance.py's crops are. The size comes first: a real
    face's blur, noise and blocks are set by its size in the photo, not by the model's input."""
    low, high = np.log(ranges.face)
    face = int(np.rint(np.exp(rng.uniform(low, high))))
    small = area_downscale(gaussian_blur(hr, rng.uniform(*ranges.blur), face), face)
    small = add_noise(small, rng.uniform(*ranges.noise), rng)
    if rng.random() < ranges.jpeg_p:
        quality = rng.integers(ranges.jpeg[0], ranges.jpeg[1] + 1)
        small = jpeg(small, quality, tuple(rng.integers(0, JPEG_BLOCK, 2)))
    return resize_face(small, size)


def image_rng(img: np.ndarray) -> np.random.Generator:
    """A generator seeded by the image's pixels: the same image draws the same every run."""
    digest = hashlib.sha256(np.ascontiguousarray(img)).digest()
    return np.random.default_rng(np.frombuffer(digest, np.uint32))


def downscale(hr: np.ndarray, degradation: str = "bilinear_chain",
              rng: np.random.Generator | None = None, size: int = LR_SIZE) -> np.ndarray:
    """The size x size LR face of HR uint8 `hr` under `degradation` (DEGRADATIONS). "photo"
    draws from `rng`, by default one seeded by `hr` (evaluation: the same LR every run)."""
    if degradation == "bicubic":
        return bicubic_downscale(hr, size)
    if degradation == "photo":
        return photo_downscale(hr, rng or image_rng(hr), size)
    if degradation != "bilinear_chain":
        raise ValueError(f"unknown degradation {degradation!r}; choose from {DEGRADATIONS}")
    return degrade(hr, size)[-1]


def degrade(hr: np.ndarray, size: int = LR_SIZE) -> list[np.ndarray]:
    """Progressive 2x bilinear downscaling: returns [hr(128), 64, 32, 16] down to `size`."""
    chain = [hr]
    while chain[-1].shape[0] > size:
        s = chain[-1].shape[0] // 2
        chain.append(cv2.resize(chain[-1], (s, s), interpolation=cv2.INTER_LINEAR))
    return chain


def canny_thresholds(gray: np.ndarray, mode: str,
                     k: Sequence[float] = CANNY_K) -> tuple[float, float]:
    """(T_l, T_h) of a CANNY_MODES mode; k = (k_l, k_h) of the adaptive rules. m and sigma are
    the mean and standard deviation of the 3x3 Sobel gradient magnitude |gx| + |gy|: the
    magnitude cv2.Canny compares its thresholds with."""
    if mode in CANNY_FIXED:
        return CANNY_FIXED[mode]
    if mode not in CANNY_MODES:
        raise ValueError(f"unknown Canny mode {mode!r}; choose from {CANNY_MODES}")
    mag = np.abs(cv2.Sobel(gray, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    m, sigma = float(mag.mean()), float(mag.std())
    k_l, k_h = k
    t_h = m + k_h * sigma
    return (t_h / 2 if mode == "adaptive" else m + k_l * sigma), t_h


def canny(img: np.ndarray, mode: str = "paper", k: Sequence[float] = CANNY_K) -> np.ndarray:
    """Canny edges of an RGB uint8 image as float32 (H,W,1) with values 0 or 255."""
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    low, high = canny_thresholds(gray, mode, k)
    return cv2.Canny(gray, low, high)[..., None].astype(np.float32)


def make_example(hr: np.ndarray, canny_mode: str = "paper", canny_k: Sequence[float] = CANNY_K,
                 parts: np.ndarray | None = None,
                 degradation: str = "bilinear_chain",
                 rng: np.random.Generator | None = None, size: int = LR_SIZE) -> Example:
    """HR uint8 128x128 -> (HR, LR size x size, Canny targets at 32/64/128) from one bilinear
    chain (the LR from `degradation`, drawing from `rng` if random), and its uint8 part maps
    `parts` (if given) scaled to 0..1."""
    chain = degrade(hr)
    hr128, hr64, hr32 = chain[:3]
    lr = chain[int(np.log2(HR_SIZE // size))]   # chain[k] is 128 / 2^k px
    if degradation != "bilinear_chain":
        lr = downscale(hr, degradation, rng, size)
    edges = tuple(canny(x, canny_mode, canny_k) for x in (hr32, hr64, hr128))
    maps = None if parts is None else parts.astype(np.float32) / 255.0
    return Example(hr128.astype(np.float32), lr.astype(np.float32), edges, maps)


def stack(examples: Sequence[Example]) -> Example:
    maps = None if examples[0].parsing is None else np.stack([e.parsing for e in examples])
    return Example(np.stack([e.hr for e in examples]), np.stack([e.lr for e in examples]),
                   tuple(np.stack(t) for t in zip(*(e.edges for e in examples))), maps)


class BatchLoader:
    """Background threads that read, crop, augment, degrade and Canny random training images
    into ready batches. OpenCV and PIL release the GIL, so two threads keep pace with a CPU
    training step. A bad file is reported once by name and never drawn again.

    `parsing` (parsing.PartMaps, prior-guided models) adds each image's part maps: they ride
    along as extra channels through the same zoom, flip and rotation, the flip swapping left
    and right parts by `parsing.mirror`."""

    def __init__(self, paths: Sequence[str], batch_size: int, preset: str = "aligned",
                 rotations: Sequence[int] = (90, 270), flip_rotate: bool = True,
                 canny_mode: str = "paper", canny_k: Sequence[float] = CANNY_K, threads: int = 2,
                 prefetch: int = 4, seed: int = 0, max_scale: float = 1.0, parsing=None,
                 hr_resize: str = "bilinear", degradation: str = "bilinear_chain",
                 lr_size: int = LR_SIZE):
        self.paths = list(paths)
        self.bad: set[str] = set()
        self.batch_size, self.preset, self.rotations = batch_size, preset, tuple(rotations)
        self.hr_resize, self.degradation, self.lr_size = hr_resize, degradation, lr_size
        self.flip_rotate, self.canny_mode, self.canny_k = flip_rotate, canny_mode, canny_k
        self.max_scale = max_scale   # > 1: rescale() augmentation (JEANet)
        self.parsing = parsing
        # the image's 3 channels stay, the part maps' follow parsing.mirror
        self.mirror = None if parsing is None else (
            lambda a: a[..., [0, 1, 2] + [3 + c for c in parsing.mirror]])
        self.queue: queue.Queue = queue.Queue(maxsize=prefetch)
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.error: Exception | None = None
        self.workers = [threading.Thread(target=self._work, args=(seed + i,), daemon=True)
                        for i in range(threads)]
        for t in self.workers:
            t.start()

    def _draw(self, rng: np.random.Generator) -> np.ndarray:
        while True:
            with self.lock:   # self.paths holds only files not found bad yet
                if not self.paths:
                    raise DataError("every training image failed to load; see the warnings above")
                path = self.paths[rng.integers(len(self.paths))]
            try:
                img = preset_crop(read_image(path), self.preset, self.hr_resize)
                return img if self.parsing is None else np.dstack([img, self.parsing(path)])
            except DataError as err:
                with self.lock:
                    if path in self.bad:   # another thread reported it already
                        continue
                    self.bad.add(path)
                    self.paths.remove(path)
                warnings.warn(f"skipping {err}")

    def _work(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            while not self.stop_event.is_set():
                batch = []
                for _ in range(self.batch_size):
                    img = self._draw(rng)
                    if self.max_scale > 1:
                        img = rescale(img, rng, self.max_scale)
                    if self.flip_rotate:
                        img = augment(img, rng, self.rotations, self.mirror)
                    parts = None if self.parsing is None else img[..., 3:]
                    batch.append(make_example(np.ascontiguousarray(img[..., :3]),
                                              self.canny_mode, self.canny_k, parts,
                                              self.degradation, rng, self.lr_size))
                self._put(stack(batch))
        except Exception as err:  # surfaced to the consumer by next()
            self.error = err
            self._put(None)

    def _put(self, item) -> None:
        while not self.stop_event.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def next(self) -> Example:
        item = self.queue.get()
        if item is None:
            raise self.error
        return item

    def close(self) -> None:
        self.stop_event.set()
        for t in self.workers:
            t.join(timeout=2)


def load_eval_set(paths: Sequence[str], preset: str = "aligned", canny_mode: str = "paper",
                  canny_k: Sequence[float] = CANNY_K,
                  hr_resize: str = "bilinear",
                  degradation: str = "bilinear_chain",
                  lr_size: int = LR_SIZE) -> tuple[list[str], Example | None]:
    """Deterministic (no augmentation) examples for validation; bad files are warned and
    skipped. Returns the paths used and their stacked examples."""
    used, examples = [], []
    for p in paths:
        try:
            hr = preset_crop(read_image(p), preset, hr_resize)
            examples.append(make_example(hr, canny_mode, canny_k, degradation=degradation,
                                         size=lr_size))
            used.append(p)
        except DataError as err:
            warnings.warn(f"skipping {err}")
    return used, (stack(examples) if examples else None)


def iterate_batches(items: Sequence, batch_size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), batch_size):
        yield items[i:i + batch_size]
