"""Realistic camera noise for the built-in demo: noise added where a camera adds it.

The simplest use of data/camera.py's pieces (which simulates full camera pipelines for training):
a clean sRGB photo is taken back to linear light, sampled through an RGGB Bayer mosaic, given
signal-dependent shot noise (Poisson) and read noise (Gaussian) per photosite, demosaicked
(bilinear) and gamma-encoded again. Demosaicking and the tone curve make the noise spatially
correlated and signal dependent, as in real sRGB photos, unlike white Gaussian noise.
"""

import numpy as np

from .data.camera import bayer_masks, demosaic_bilinear, linear_to_srgb, srgb_to_linear

READ_NOISE = 0.004  # Gaussian read noise, in linear units of white


def camera_noise(srgb: np.ndarray, photons_at_white: float, rng: np.random.Generator,
                 read_noise: float = READ_NOISE) -> np.ndarray:
    """Float HxWx3 sRGB in 0..1 -> the same photo with camera noise added, float in 0..1."""
    linear = srgb_to_linear(np.clip(srgb, 0, 1))
    cfa = bayer_masks(*srgb.shape[:2])
    mosaic = (linear * cfa).sum(axis=-1)
    shot = rng.poisson(mosaic * photons_at_white) / photons_at_white
    raw = shot + rng.normal(0.0, read_noise, mosaic.shape)
    return linear_to_srgb(demosaic_bilinear(raw, cfa))


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
