"""Our two optional output corrections, in the order the denoiser applies them.

Both off gives the paper's output; see `nn/lowpass.py` and `nn/wiener.py` for what each does.

The blend's "auto" (an option) runs it only where the measured noise is light, with the threshold
`--preset auto` uses. With the converged lgbpn-s the blend adds 3 dB on PolyU's light noise and costs
0.5 dB on SIDD's heavy noise (its one noise variance misses shot noise, which grows with brightness),
so "auto" is best on those two sets; but a textured photo with moderate noise (the demo, sigma 7.8)
loses 3.5 dB without it, so the default blends every image.
"""

import torch

from .nn.lowpass import DEFAULT_SIGMA, restore_low_frequencies
from .nn.wiener import residual_guard, residual_wiener_blend
from .noise import LIGHT_NOISE_SIGMA, measure_noise


def blend_suits(noisy: torch.Tensor) -> bool:
    """Whether the auto blend runs on a (C, H, W) 0..255 image: light measured noise (or too small to measure)."""
    profile = measure_noise(noisy)
    return profile is None or profile.sigma < LIGHT_NOISE_SIGMA


def apply_corrections(denoised: torch.Tensor, noisy: torch.Tensor, lowpass_sigma: float | None = DEFAULT_SIGMA,
                      blend: bool | str = True, in_place: bool = False) -> torch.Tensor:
    """(B, C, H, W) network output and its noisy input (0..255 scale) -> corrected output (`in_place`: written
    over `denoised`, one whole-image copy fewer)."""
    if lowpass_sigma:
        denoised = restore_low_frequencies(denoised, noisy, lowpass_sigma)
        in_place = True  # a tensor of our own now
    if blend == "auto":
        chosen = torch.tensor([blend_suits(image) for image in noisy], device=denoised.device)
        if chosen.any():
            denoised = torch.where(chosen.view(-1, 1, 1, 1), residual_wiener_blend(denoised, noisy), denoised)
    elif blend:
        denoised = residual_wiener_blend(denoised, noisy, out=denoised if in_place else None)
    return denoised


def finish_output(denoised: torch.Tensor, noisy: torch.Tensor, corrections_learnt: bool,
                  lowpass_sigma: float | None = DEFAULT_SIGMA, blend: bool | str = True, guard: bool = True,
                  in_place: bool = False) -> torch.Tensor:
    """The network's output as the denoiser gives it: our corrections, or, for a student that learnt
    them, its guard (nn/wiener.py); `in_place`: written over `denoised`."""
    if not corrections_learnt:
        return apply_corrections(denoised, noisy, lowpass_sigma, blend, in_place)
    if not guard:
        return denoised
    return residual_guard(denoised, noisy, out=denoised if in_place else None)
