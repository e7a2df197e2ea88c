"""PSNR and SSIM follow the papers' conventions, checked against computations written out here."""

import math
import warnings

import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from lgbpn.metrics import psnr, ssim, to_uint8

from .helpers import noisy_image


def psnr_by_formula(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255.0**2 / mse)


def ssim_by_formula(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al.'s SSIM of one channel: 7x7 uniform window, sample covariances, data range 255,
    the mean over the positions whose window lies inside the image (scikit-image's defaults)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    n = 7 * 7
    mean = lambda x: uniform_filter(x, 7)  # noqa: E731
    mu_a, mu_b = mean(a), mean(b)
    var_a = (mean(a * a) - mu_a**2) * n / (n - 1)
    var_b = (mean(b * b) - mu_b**2) * n / (n - 1)
    cov = (mean(a * b) - mu_a * mu_b) * n / (n - 1)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = (2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(s[3:-3, 3:-3].mean())


def test_rounding_is_floor_of_x_plus_half_clipped():
    values = np.array([-3.0, -0.6, 0.49, 0.5, 1.5, 2.5, 3.5, 254.5, 255.4, 300.0])
    # np.round would give 2 for 2.5 and 4 for 3.5 (half to even); the reference rounds halves up.
    assert to_uint8(values).tolist() == [0, 0, 0, 1, 2, 3, 4, 255, 255, 255]
    assert to_uint8(values.astype(np.float32)).dtype == np.uint8
    u8 = noisy_image(5, 6)
    assert to_uint8(u8) is u8  # already 8-bit: untouched


def test_psnr_is_computed_on_rounded_8bit_values():
    clean = noisy_image(32, 40, seed=1)
    pred = clean.astype(np.float64) + np.random.default_rng(0).normal(0, 1.5, clean.shape)  # weak noise: rounding shows
    expected = psnr_by_formula(np.clip(np.floor(pred + 0.5), 0, 255), clean)
    assert psnr(pred, clean) == pytest.approx(expected, abs=1e-9)
    assert psnr(clean, pred) == pytest.approx(expected, abs=1e-9)  # symmetric
    # Without rounding the value differs: the convention is visible in the score.
    assert abs(psnr_by_formula(np.clip(pred, 0, 255), clean) - expected) > 0.1


def test_psnr_known_values():
    clean = np.full((8, 8, 3), 100, np.uint8)
    assert psnr(clean + 1, clean) == pytest.approx(20 * math.log10(255), abs=1e-9)  # MSE 1: 48.13 dB
    assert psnr(clean.astype(np.float32) + 0.5, clean) == pytest.approx(20 * math.log10(255))  # 100.5 rounds up
    assert psnr(clean.astype(np.float32) + 0.49, clean) == math.inf  # rounds back to the reference
    assert psnr(clean, clean) == math.inf
    off = clean.copy()
    off[0, 0, 0] = 0  # one pixel off by 100 of 192: MSE 100^2 / 192
    assert psnr(off, clean) == pytest.approx(10 * math.log10(255**2 * 192 / 100**2), abs=1e-9)


def test_ssim_rgb_is_the_mean_of_the_channels():
    clean = noisy_image(40, 48, seed=2)
    pred = np.clip(clean.astype(np.float64) + np.random.default_rng(1).normal(0, 10, clean.shape), 0, 255)
    rounded = to_uint8(pred)
    expected = np.mean([ssim_by_formula(rounded[..., c], clean[..., c]) for c in range(3)])
    assert ssim(pred, clean) == pytest.approx(expected, abs=1e-9)
    assert ssim(clean, pred) == pytest.approx(expected, abs=1e-9)
    assert 0.2 < expected < 0.95  # a real, partial similarity: the comparison is not vacuous


def test_ssim_grey_with_and_without_channel_axis():
    clean = noisy_image(30, 36, channels=1, seed=3)
    pred = np.clip(clean.astype(np.float64) + np.random.default_rng(2).normal(0, 8, clean.shape), 0, 255)
    expected = ssim_by_formula(to_uint8(pred)[..., 0], clean[..., 0])
    assert ssim(pred, clean) == pytest.approx(expected, abs=1e-9)
    assert ssim(pred[..., 0], clean[..., 0]) == pytest.approx(expected, abs=1e-9)


def test_identical_images():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a perfect score is a result, not a numerical accident to warn about
        for image in (noisy_image(16, 16), noisy_image(16, 16, channels=1), noisy_image(16, 16, channels=1)[..., 0]):
            assert ssim(image, image) == pytest.approx(1.0, abs=1e-12)
            assert psnr(image, image) == math.inf
            assert ssim(image.astype(np.float32) + 0.3, image) == pytest.approx(1.0, abs=1e-12)  # rounds back
