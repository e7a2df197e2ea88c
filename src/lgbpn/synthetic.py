"""Realistic camera noise for the built-in demo: noise added where a camera adds it.

A clean sRGB photo is taken back to linear light, sampled through an RGGB Bayer mosaic, given
signal-dependent shot noise (Poisson) and read noise (Gaussian) per photosite, demosaicked
(bilinear) and gamma-encoded again. Demosaicking and the tone curve make the noise spatially
correlated and signal dependent, as in real sRGB photos, unlike white Gaussian noise.
"""

import numpy as np
from scipy.ndimage import convolve

READ_NOISE = 0.004  # Gaussian read noise, in linear units of white


def _srgb_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(v: np.ndarray) -> np.ndarray:
    v = np.clip(v, 0, 1)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)


def _bayer_masks(h: int, w: int) -> np.ndarray:
    """(H, W, 3) one-hot RGGB colour filter array."""
    cfa = np.zeros((h, w, 3), dtype=bool)
    cfa[0::2, 0::2, 0] = True
    cfa[0::2, 1::2, 1] = True
    cfa[1::2, 0::2, 1] = True
    cfa[1::2, 1::2, 2] = True
    return cfa


def _demosaic_bilinear(mosaic: np.ndarray, cfa: np.ndarray) -> np.ndarray:
    kernel_rb = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 4.0
    kernel_g = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]]) / 4.0
    out = np.empty(cfa.shape)
    for c, kernel in enumerate((kernel_rb, kernel_g, kernel_rb)):
        out[..., c] = convolve(mosaic * cfa[..., c], kernel, mode="mirror")
    return out


def camera_noise(srgb: np.ndarray, photons_at_white: float, rng: np.random.Generator,
                 read_noise: float = READ_NOISE) -> np.ndarray:
    """Float HxWx3 sRGB in 0..1 -> the same photo with camera noise added, float in 0..1."""
    linear = _srgb_to_linear(np.clip(srgb, 0, 1))
    cfa = _bayer_masks(*srgb.shape[:2])
    mosaic = (linear * cfa).sum(axis=-1)
    shot = rng.poisson(mosaic * photons_at_white) / photons_at_white
    raw = shot + rng.normal(0.0, read_noise, mosaic.shape)
    return _linear_to_srgb(_demosaic_bilinear(raw, cfa))


def add_camera_noise(
    clean: np.ndarray, photons_at_white: float = 150.0, read_noise: float = READ_NOISE, seed: int = 0
) -> np.ndarray:
    """uint8 HxWx3 sRGB -> noisy uint8 HxWx3. Fewer photons = higher ISO = more noise."""
    srgb = camera_noise(clean.astype(np.float64) / 255.0, photons_at_white, np.random.default_rng(seed), read_noise)
    return np.clip(np.floor(srgb * 255.0 + 0.5), 0, 255).astype(np.uint8)


def demo_image(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(clean, noisy) from scikit-image's bundled astronaut photo (512x512), no files needed."""
    from skimage import data

    clean = data.astronaut()
    return clean, add_camera_noise(clean, seed=seed)
