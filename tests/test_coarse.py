"""The coarse pass against coarse colour noise: exact on any region, chroma only, and it removes blotches."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lgbpn.coarse import apply_coarse_pass, halve, upsample
from lgbpn.denoiser import Denoiser
from lgbpn.noise import measure_noise

from .helpers import noisy_scene, tiny_model


def test_halve_repeats_an_odd_edge():
    x = torch.arange(15.0).view(1, 1, 3, 5)
    halved = halve(x)
    assert halved.shape == (1, 1, 2, 3)
    assert halved[0, 0, 0, 0] == (0 + 1 + 5 + 6) / 4 and halved[0, 0, 1, 2] == 14  # the corner: one pixel, repeated


@pytest.mark.parametrize("h,w", [(40, 50), (41, 37)])
def test_an_upsampled_region_equals_the_whole_upsampled_and_cut(h, w):
    coarse = torch.rand(1, 3, (h + 1) // 2, (w + 1) // 2, generator=torch.Generator().manual_seed(h))
    whole = F.interpolate(coarse, scale_factor=2, mode="bilinear", align_corners=False)[..., :h, :w]
    for top, bottom, left, right in [(0, h, 0, w), (0, 7, 3, 20), (5, 6, 0, 1), (11, h, 19, w), (1, h - 1, 2, w - 3)]:
        region = upsample(coarse, slice(top, bottom), slice(left, right))
        torch.testing.assert_close(region, whole[..., top:bottom, left:right], rtol=0, atol=0)


def test_only_chroma_changes():
    denoised = torch.rand(1, 3, 64, 80) * 255
    out = apply_coarse_pass(denoised, torch.rand(1, 3, 32, 40) * 255)
    assert (out - denoised).abs().mean() > 1
    torch.testing.assert_close((out - denoised).mean(dim=1), torch.zeros(1, 64, 80), rtol=0, atol=1e-3)


def smoothing_student(**options) -> Denoiser:
    """An ordinary network that averages 5 x 5 pixels: fine noise goes, blotches wider than that stay."""
    model = tiny_model("unet-half")
    model.forward = lambda x, **_: F.avg_pool2d(x, 5, stride=1, padding=2, count_include_pad=False)
    return Denoiser(model, guard=False, precision="fp32", **options)


def test_the_coarse_pass_removes_colour_blotches_the_full_scale_pass_keeps():
    rng = np.random.default_rng(0)
    clean = np.full((128, 128, 3), 120.0)
    blotches = np.kron(rng.normal(0, 6, (16, 16, 3)), np.ones((8, 8, 1)))  # 8-pixel colour blotches
    noisy = np.clip(clean + blotches + rng.normal(0, 3, clean.shape), 0, 255).round().astype(np.uint8)

    def chroma_error(out):
        error = out.astype(float) - clean
        return np.abs(error - error.mean(axis=2, keepdims=True)).mean()

    plain = smoothing_student(coarse=False).denoise_pixels(noisy)
    coarse = smoothing_student(coarse=True).denoise_pixels(noisy)
    assert chroma_error(coarse) < 0.92 * chroma_error(plain)  # measured 0.87


def test_auto_runs_on_heavy_noise_and_ordinary_networks_only():
    student = smoothing_student(coarse="auto")
    heavy, light = (measure_noise(torch.from_numpy(noisy_scene(sigma, 96)).permute(2, 0, 1).float()) for sigma in (12, 2))
    assert student._coarse_pass(heavy) and not student._coarse_pass(light)
    assert not smoothing_student()._coarse_pass(heavy)  # off unless asked
    assert smoothing_student(coarse=True)._coarse_pass(light) and not smoothing_student(coarse=False)._coarse_pass(heavy)
    assert not Denoiser(tiny_model("lgbpn-s"), coarse=True)._coarse_pass(heavy)  # blind-spot: never
