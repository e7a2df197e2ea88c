"""Our two optional output corrections, in the order the denoiser applies them.

Both off gives the paper's output; see `nn/lowpass.py` and `nn/wiener.py` for what each does.
"""

import torch

from .nn.lowpass import DEFAULT_SIGMA, restore_low_frequencies
from .nn.wiener import residual_wiener_blend


def apply_corrections(denoised: torch.Tensor, noisy: torch.Tensor, lowpass_sigma: float | None = DEFAULT_SIGMA,
                      blend: bool = True) -> torch.Tensor:
    """(B, C, H, W) network output and its noisy input (0..255 scale) -> corrected output."""
    if lowpass_sigma:
        denoised = restore_low_frequencies(denoised, noisy, lowpass_sigma)
    if blend:
        denoised = residual_wiener_blend(denoised, noisy)
    return denoised
