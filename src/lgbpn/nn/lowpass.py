"""Low-frequency correction: the low band from the noisy input, the high band from the network.

A blind-spot network trained briefly can carry a low-frequency bias (e.g. shifting a saturated
colour it rarely saw). Camera noise is close to zero-mean, so a wide Gaussian blur of the noisy
image estimates the clean image's low frequencies with almost no noise left. Replacing the
output's low band by the input's removes the bias: out + G(noisy) - G(out).
"""

import math

import torch

from ..options import DEFAULT_LOWPASS_SIGMA as DEFAULT_SIGMA
from .bands import map_local
from .filters import separable_sum


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) with reflect padding (any image size; nn/filters.py)."""
    radius = math.ceil(3 * sigma)  # as restore_low_frequencies' halo
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
    weights = torch.exp(-0.5 * (taps / sigma) ** 2)
    return separable_sum(x, radius, (weights / weights.sum()).tolist())


def restore_low_frequencies(denoised: torch.Tensor, noisy: torch.Tensor, sigma: float = DEFAULT_SIGMA) -> torch.Tensor:
    """out + G(noisy) - G(out), a band of rows at a time (nn/bands.py: no whole-image temporaries)."""
    return map_local(lambda d, n: d + gaussian_blur(n - d, sigma), (denoised, noisy), math.ceil(3 * sigma))
