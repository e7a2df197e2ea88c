"""Strength: 0 gives the input back, 1 the default output, and more strength removes more noise and more texture."""

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from lgbpn import Denoiser
from lgbpn.io import read_image
from lgbpn.strength import apply_strength
from lgbpn.synthetic import demo_image

from .helpers import noisy_image, png, run_cli

STRENGTHS = (0, 0.25, 0.5, 1, 1.5, 2)


def fast(strength: float) -> Denoiser:
    return Denoiser.from_pretrained(precision="fp32", strength=strength)  # fp32: the same on CPUs with and without bf16


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_strength_0_gives_the_input_back_exactly(dtype):
    image = noisy_image(40, 36, 4, dtype=dtype)  # with alpha
    out = fast(0)(image)
    assert out.dtype == image.dtype and np.array_equal(out, image)


def test_strength_1_is_the_default_output():
    image = noisy_image(48, 48)
    assert Denoiser.from_pretrained().options.strength == 1
    assert np.array_equal(fast(1)(image), Denoiser.from_pretrained(precision="fp32")(image))


def test_below_1_a_blend_with_the_input_and_above_a_second_pass_blended_in():
    x = torch.rand(1, 3, 8, 8) * 255
    passes = []

    def halve(image):  # a stand-in denoiser that records what it was given
        passes.append(image)
        return image / 2

    assert apply_strength(halve, x, 0) is x and not passes
    torch.testing.assert_close(apply_strength(halve, x, 0.25), x * 0.875)
    assert len(passes) == 1
    torch.testing.assert_close(apply_strength(halve, x, 1.5), x / 2 - 0.5 * x / 4)
    assert len(passes) == 3 and torch.equal(passes[2], x / 2)  # the second pass denoises the first one's output
    torch.testing.assert_close(apply_strength(halve, x, 2), x / 4)


def test_more_strength_leaves_less_noise_on_a_flat_patch_and_less_strength_keeps_more_texture(one_thread):
    rng = np.random.default_rng(0)
    flat = np.clip(np.round(128 + rng.normal(0, 12, (64, 64, 3))), 0, 255).astype(np.uint8)
    clean, noisy = demo_image()
    texture = (slice(70, 166), slice(160, 256))  # the astronaut's face and hair

    def high_pass(a):
        a = a.astype(np.float64)
        return a - gaussian_filter(a, (2, 2, 0))

    reference = high_pass(clean[texture])
    noise, kept = [], []
    for strength in STRENGTHS:
        denoiser = fast(strength)
        noise.append((denoiser(flat).astype(np.float64) - 128).var())
        # The share of the clean image's fine detail that is in the output (the noise is independent of it).
        kept.append((high_pass(denoiser(noisy[texture])) * reference).sum() / (reference * reference).sum())
    assert all(a > b for a, b in zip(noise, noise[1:])), noise
    assert all(a > b for a, b in zip(kept, kept[1:])), kept


def test_cli_strength_equals_the_api(tmp_path):
    source = png(tmp_path / "in.png", noisy_image(40, 40))
    for strength in ("0.5", "1.5"):
        out = tmp_path / f"out{strength}.png"
        result = run_cli("denoise", source, "-o", out, "--strength", strength, "--precision", "fp32")
        assert result.exit_code == 0, result.output
        assert np.array_equal(read_image(out).pixels, fast(float(strength))(read_image(source).pixels))
