"""Our two optional output corrections, in the order the denoiser applies them.

Both off gives the paper's output; see `nn/lowpass.py` and `nn/wiener.py` for what each does.

The blend's "auto" (the default) runs it where the measured noise is light only. Its noise variance
is one number per image, read in the flat areas. Light noise leaves a residual that is mostly lost
texture, which the blend gives back (PolyU, sigma 0.7-4.2: +1.3 dB over the low-frequency
correction alone with the converged lgbpn-s). Heavy noise is mostly shot noise, whose variance grows
with brightness: in bright areas the residual exceeds the flat areas' variance and the blend gives
noise back (SIDD, sigma 7-29: -0.5 dB). The threshold is the one `--preset auto` uses.
"""

import torch

from .nn.lowpass import DEFAULT_SIGMA, restore_low_frequencies
from .nn.wiener import residual_wiener_blend
from .noise import LIGHT_NOISE_SIGMA, measure_noise


def blend_suits(noisy: torch.Tensor) -> bool:
    """Whether the auto blend runs on a (C, H, W) 0..255 image: light measured noise (or too small to measure)."""
    profile = measure_noise(noisy)
    return profile is None or profile.sigma < LIGHT_NOISE_SIGMA


def apply_corrections(denoised: torch.Tensor, noisy: torch.Tensor, lowpass_sigma: float | None = DEFAULT_SIGMA,
                      blend: bool | str = "auto") -> torch.Tensor:
    """(B, C, H, W) network output and its noisy input (0..255 scale) -> corrected output."""
    if lowpass_sigma:
        denoised = restore_low_frequencies(denoised, noisy, lowpass_sigma)
    if blend == "auto":
        chosen = torch.tensor([blend_suits(image) for image in noisy], device=denoised.device)
        if chosen.any():
            denoised = torch.where(chosen.view(-1, 1, 1, 1), residual_wiener_blend(denoised, noisy), denoised)
    elif blend:
        denoised = residual_wiener_blend(denoised, noisy)
    return denoised
