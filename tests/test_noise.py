"""The noise profile read from a noisy image alone: level and neighbour correlation."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lgbpn.noise import noise_profile, residual_share


def scene(size: int = 256) -> torch.Tensor:
    """A smooth RGB scene (gradients and a soft disc) on the 0..255 scale, away from clipping."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    disc = ((yy - 0.5).square() + (xx - 0.5).square() < 0.1).float()
    base = torch.stack([60 + 100 * xx, 80 + 60 * yy, 120 + 50 * disc])
    return F.avg_pool2d(base[None], 5, stride=1, padding=2, count_include_pad=False)[0]


def correlated(noise: torch.Tensor, width: int) -> torch.Tensor:
    """White noise smoothed by a box of `width` pixels, rescaled to keep its standard deviation."""
    smooth = F.avg_pool2d(noise[:, None], width, stride=1, padding=width // 2)[:, 0]
    return smooth * (noise.std() / smooth.std())


@pytest.mark.parametrize("sigma", [2.0, 8.0, 25.0])
def test_white_noise_level_and_no_correlation(sigma):
    noise = torch.randn(3, 256, 256, generator=torch.Generator().manual_seed(0)) * sigma
    profile = noise_profile(scene() + noise)
    assert profile.sigma == pytest.approx(sigma, rel=0.1)
    assert profile.correlation < 0.1


def test_correlated_noise_is_measured_at_its_full_level():
    noise = correlated(torch.randn(3, 256, 256, generator=torch.Generator().manual_seed(1)) * 10, 3)
    profile = noise_profile(scene() + noise)
    assert profile.sigma == pytest.approx(10, rel=0.15)  # a neighbour-difference estimate would see far less
    assert profile.correlation > 0.4


@pytest.mark.parametrize("kept", [1.0, 0.7])
def test_a_residual_is_measured_as_its_share_of_the_noise(kept):
    """A denoiser that leaves 30% of the noise's amplitude has a residual holding 0.7 of it; the structure that a
    residual also holds elsewhere (stripes it removed) does not count."""
    noise = correlated(torch.randn(3, 256, 256, generator=torch.Generator().manual_seed(3)) * 8, 3)
    stripes = 40 * torch.sin(torch.arange(256.0) / 2)[None, None, :] * (torch.arange(256) < 96)[None, :, None]
    assert residual_share(scene() + stripes + noise, kept * noise + stripes) == pytest.approx(kept, rel=0.05)


def test_structure_does_not_count_as_noise():
    stripes = scene() + 40 * torch.sin(torch.arange(256.0) / 2)[None, None, :] * (torch.arange(256) < 96)[None, :, None]
    noise = torch.randn(3, 256, 256, generator=torch.Generator().manual_seed(2)) * 5
    assert noise_profile(stripes + noise).sigma == pytest.approx(5, rel=0.15)


def test_clipped_blocks_are_left_out():
    noise = torch.randn(3, 256, 256, generator=torch.Generator().manual_seed(3)) * 10
    image = scene() + noise
    image[:, :160] = 0  # a large black, clipped area: no noise visible there
    assert noise_profile(image.clamp(0, 255)).sigma == pytest.approx(10, rel=0.15)


def test_peak_rescales_to_the_8_bit_scale():
    noise = torch.randn(3, 128, 128, generator=torch.Generator().manual_seed(4)) * 6
    image = scene(128) + noise
    assert noise_profile(image / 255, peak=1.0).sigma == pytest.approx(noise_profile(image).sigma, rel=1e-6)


def test_too_small_is_refused():
    with pytest.raises(ValueError, match="too small"):
        noise_profile(torch.zeros(3, 20, 64))


def test_real_heavy_noise_reads_higher_than_light(shared_data):
    from lgbpn.io import read_image

    def sigma(path):
        return noise_profile(torch.from_numpy(read_image(path).pixels.astype(np.float32)).permute(2, 0, 1)).sigma

    heavy = sigma(shared_data / "sidd_samples" / "noisy" / "sidd_00.png")
    light = sigma(shared_data / "polyu" / "noisy" / sorted(p.name for p in (shared_data / "polyu" / "noisy").iterdir())[0])
    assert heavy > 3 * light
