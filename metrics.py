"""Image-quality and identity metrics of the paper's Section 4.3 (Tables 5-9)."""
from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio


def psnr(sr: np.ndarray, hr: np.ndarray) -> float:
    """PSNR in dB of RGB images in 0..255."""
    return float(peak_signal_noise_ratio(np.asarray(hr, np.float64), np.asarray(sr, np.float64),
                                         data_range=255))
