"""PSNR and SSIM as the real-noise denoising papers (SIDD, DND, AP-BSN, LG-BPN) report them.

Conventions: outputs are rounded to 8-bit integers first (add 0.5, floor, clip to 0..255, as the
reference code does), data range 255, SSIM on the RGB image (scikit-image, channel_axis=-1,
default 7x7 uniform window), per-image values averaged over the set.
"""

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round a 0..255-scale float image the reference's way: floor(x + 0.5), clipped."""
    if image.dtype == np.uint8:
        return image
    return np.clip(np.floor(np.asarray(image, dtype=np.float64) + 0.5), 0, 255).astype(np.uint8)


def psnr(pred: np.ndarray, clean: np.ndarray) -> float:
    """inf for identical images, without NumPy's divide-by-zero warning."""
    with np.errstate(divide="ignore"):
        return float(peak_signal_noise_ratio(to_uint8(clean), to_uint8(pred), data_range=255))


def ssim(pred: np.ndarray, clean: np.ndarray) -> float:
    pred, clean = to_uint8(pred), to_uint8(clean)
    if pred.ndim == 2 or pred.shape[-1] == 1:
        return float(structural_similarity(clean.squeeze(-1) if clean.ndim == 3 else clean,
                                           pred.squeeze(-1) if pred.ndim == 3 else pred, data_range=255))
    return float(structural_similarity(clean, pred, data_range=255, channel_axis=-1))
