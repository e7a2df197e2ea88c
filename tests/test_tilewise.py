"""A photo tile by tile, array to array: the whole-image path's output, in bounded memory."""

import numpy as np
import pytest
import torch

from lgbpn import tilewise
from lgbpn.denoiser import Denoiser
from lgbpn.io import read_image
from lgbpn.layout import to_channels_first, to_channels_last
from lgbpn.metrics import psnr
from lgbpn.tilewise import from_network_scale, spread_indices
from lgbpn.tiling import plan_tiles

from .helpers import noisy_image, tiny_model

TILE = 128  # a 200 x 260 image in 2 x 3 tiles: the guard samples them all


def whole_image_path(denoiser: Denoiser, pixels: np.ndarray) -> np.ndarray:
    """What denoise_pixels gave before the tile-wise path: whole-image tensors."""
    return to_channels_last(denoiser._denoise_colour(to_channels_first(pixels)))


def student(**options) -> Denoiser:
    """A distilled student (its guard runs) that smooths: it erases fine texture with the noise, which is
    where the guard gives the input back."""
    model = tiny_model("unet-half")
    model.corrections_learnt = True
    model.forward = lambda x, **_: torch.nn.functional.avg_pool2d(x, 5, stride=1, padding=2, count_include_pad=False)
    return Denoiser(model, tile=TILE, **options)


def scene(channels: int = 3, dtype=np.uint8) -> np.ndarray:
    """Noise on smooth shading, and a fine checkerboard over the right half."""
    yy, xx = np.mgrid[0:200, 0:260]
    shading = 0.45 + 0.15 * np.sin(yy / 30.0) * np.cos(xx / 37.0)
    pixels = shading[..., None] + np.random.default_rng(2).normal(0, 0.012, (200, 260, channels))
    pixels[:, 130:] += 0.12 * ((np.indices((200, 130)).sum(0) % 2) * 2 - 1)[..., None]
    pixels = np.clip(pixels, 0, 1).astype(np.float32)
    if dtype == np.float32:
        return pixels
    peak = np.iinfo(dtype).max
    return np.round(pixels * peak).astype(dtype)


@pytest.mark.parametrize("channels,dtype", [(3, np.uint8), (3, np.uint16), (1, np.uint8), (3, np.float32)])
@pytest.mark.parametrize("options", [{}, {"strength": 0.6}, {"guard": False}])
def test_tiles_give_the_whole_image_output_bit_for_bit(channels, dtype, options):
    denoiser = student(**options)
    pixels = scene(channels, dtype)
    rows, cols = plan_tiles(denoiser.model, 200, 260, TILE)
    assert 1 < len(rows) * len(cols) <= tilewise.guard_sample_tiles(200 * 260, len(rows) * len(cols))
    assert denoiser._by_tiles()
    out = denoiser.denoise_pixels(pixels)
    assert out.dtype == pixels.dtype and out.shape == pixels.shape
    np.testing.assert_array_equal(out, whole_image_path(denoiser, pixels))


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_tiles_with_the_coarse_pass_give_the_whole_image_output(dtype):
    """The same to float32 round-off: the coarse pass's blur is a convolution, whose sums oneDNN may order
    differently on a tile than on the whole image (a real photo and the shipped student came out bit-equal)."""
    denoiser = student(coarse=True)
    pixels = scene(3, dtype)
    out, whole = denoiser.denoise_pixels(pixels), whole_image_path(denoiser, pixels)
    assert not np.array_equal(out, student(coarse=False).denoise_pixels(pixels))
    if dtype == np.float32:
        np.testing.assert_allclose(out, whole, rtol=0, atol=1e-4)
    else:
        differ = out != whole
        assert np.abs(out.astype(int) - whole.astype(int)).max() <= 1 and differ.mean() < 1e-3


def test_the_guard_acts_in_these_tests():
    pixels = scene()
    guarded, raw = student().denoise_pixels(pixels), student(guard=False).denoise_pixels(pixels)
    change = np.abs(guarded.astype(int) - raw.astype(int))
    assert change[:, 140:].mean() > 10 * max(change[:, :120].mean(), 0.1)  # the checkerboard comes back


def test_what_needs_the_whole_image_keeps_the_whole_image_path():
    assert not student(strength=1.5)._by_tiles()  # a second pass over the first one's output
    adapted = tiny_model("unet-half")
    adapted.corrections_learnt, adapted.base = True, "lgbpn-fast"
    assert not Denoiser(adapted)._by_tiles() and Denoiser(adapted, keep_base=False)._by_tiles()
    blind_spot = tiny_model("lgbpn-s")
    assert not Denoiser(blind_spot)._by_tiles()  # the low-pass correction
    assert Denoiser(blind_spot, lowpass_sigma=None, blend=False)._by_tiles()


def test_a_progress_function_hears_every_tile_once():
    calls = []
    student(progress=lambda done, tiles: calls.append((done, tiles))).denoise_pixels(scene())
    tiles = len(calls)
    assert tiles > 1 and calls == [(n, tiles) for n in range(1, tiles + 1)]


def test_nan_is_refused_before_any_work():
    pixels = noisy_image(64, 64, dtype=np.float32)
    pixels[5, 7, 1] = np.nan
    with pytest.raises(Exception, match="NaN or Inf"):
        student().denoise_pixels(pixels)


def test_a_photo_of_many_tiles_stays_within_a_hundredth_of_a_db(shared_data, one_thread, monkeypatch):
    """Beyond the tiles that hold GUARD_SAMPLE_PIXELS the guard's noise variance comes from a spread of tiles:
    8 of 30, as on a 12 MP photo at 672 px, moves the output of the shipped student on a real photo by under
    0.01 dB."""
    pair = sorted((shared_data / "polyu" / "noisy").iterdir())[0]
    noisy = read_image(pair).pixels
    clean = read_image(shared_data / "polyu" / "clean" / pair.name).pixels
    denoiser = Denoiser.from_pretrained(tile=96, precision="fp32")
    rows, cols = plan_tiles(denoiser.model, *noisy.shape[:2], 96)
    tiles, pixels = len(rows) * len(cols), noisy.shape[0] * noisy.shape[1]
    assert tiles >= 30
    monkeypatch.setattr(tilewise, "GUARD_SAMPLE_PIXELS", pixels * 8 // tiles)
    assert tilewise.guard_sample_tiles(pixels, tiles) == 8
    sampled = denoiser.denoise_pixels(noisy)
    monkeypatch.setattr(tilewise, "GUARD_SAMPLE_PIXELS", pixels)
    every_tile = denoiser.denoise_pixels(noisy)
    np.testing.assert_array_equal(every_tile, whole_image_path(denoiser, noisy))
    assert abs(psnr(sampled, clean) - psnr(every_tile, clean)) < 0.01


def test_spread_indices():
    assert spread_indices(5, 8) == [0, 1, 2, 3, 4]
    assert spread_indices(30, 8) == [0, 4, 8, 12, 17, 21, 25, 29]
    assert spread_indices(9, 1) == [0]


@pytest.mark.parametrize("dtype, peak", [(torch.uint8, 255.0), (torch.uint16, 65535.0)])
def test_integer_rounding_in_row_bands_equals_the_whole_image_formula(dtype, peak):
    out = torch.rand(3, 600, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float32) * 270 - 5
    out[0, :, 0] = torch.arange(600) / 2.0  # exact halves round up
    whole = torch.floor(out.double() * (peak / 255.0) + 0.5).clamp(0, peak).to(dtype)
    assert torch.equal(from_network_scale(out, dtype), whole)
