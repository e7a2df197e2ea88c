"""Residual Wiener blend: give back the input wherever the network removed more than noise.

A blind-spot network never sees the pixel it predicts, so where the image holds detail that the
neighbours cannot predict (fine texture, light-noise photos) it smooths it away. The residual
noisy - denoised is then noise plus lost signal. A local Wiener (Lee) filter on that residual,
    out = denoised + w * (noisy - denoised),   w = max(0, 1 - noise_var / local_residual_energy),
keeps w near 0 where the residual looks like noise and lets the input back where it carries more
energy than noise. The noise variance is the median local residual energy over the flatter half of
the image (by the local variance of the input), where the network is most likely right: no noise
model and no clean data, spatially correlated noise included, and textures that the network
smoothed away, even when they fill most of the photo, do not inflate it.

The same blend made strict is a distilled student's guard (`residual_guard`): it gives the input
back only where the residual's local energy is more than GUARD_NOISE_FACTOR times the noise's (4x
its RMS), structure the student erased (a fine grille on a camera it never saw), never noise.
"""

import torch

from .bands import map_local, row_bands
from .filters import separable_sum

DEFAULT_WINDOW = 9
# The student guard's margin: from 8 to 32 it scored within 0.02 dB on the seen and unseen cameras.
GUARD_NOISE_FACTOR = 16.0


def local_mean(x: torch.Tensor, window: int) -> torch.Tensor:
    """Box mean over window x window (odd) with reflect padding, on any image size (nn/filters.py: the same
    means as avg_pool2d to float32 round-off, at a tenth of its CPU time)."""
    return separable_sum(x, window // 2).div_(window * window)


def local_variance(x: torch.Tensor, window: int) -> torch.Tensor:
    return (local_mean(x.square(), window) - local_mean(x, window).square()).clamp_min(0)


def flat_area_median(values: torch.Tensor, activity: torch.Tensor) -> torch.Tensor:
    """(B, 1, 1, 1): per image, the median of `values` where `activity` is at most its median."""
    medians = []
    for value, act in zip(values.flatten(1), activity.flatten(1)):
        medians.append(value[act <= act.median()].median())
    return torch.stack(medians).view(-1, 1, 1, 1)


def residual_energy(denoised: torch.Tensor, noisy: torch.Tensor, window: int = DEFAULT_WINDOW) -> torch.Tensor:
    """(B, 1, H, W): the local mean of the residual's energy (channels averaged)."""
    return local_mean((noisy - denoised).square().mean(dim=1, keepdim=True), window)


def input_activity(noisy: torch.Tensor, window: int = DEFAULT_WINDOW) -> torch.Tensor:
    """(B, 1, H, W): the local variance of the input's channel mean (what tells flat areas from busy ones)."""
    return local_variance(noisy.mean(dim=1, keepdim=True), window)


def blend_by_energy(denoised: torch.Tensor, noisy: torch.Tensor, energy: torch.Tensor, noise_var: torch.Tensor,
                    out: torch.Tensor | None = None) -> torch.Tensor:
    """The blend itself, given the residual energy map and the noise variance, a band of rows at a time into
    `out` (which may be `denoised` itself)."""
    out = torch.empty_like(denoised) if out is None else out
    tiny = torch.finfo(energy.dtype).tiny
    for rows, _, _ in row_bands(denoised.shape[-2]):
        d, n = denoised[..., rows, :], noisy[..., rows, :]
        weight = (1 - noise_var / energy[..., rows, :].clamp_min(tiny)).clamp_(0, 1)
        out[..., rows, :] = torch.addcmul(d, weight, n - d)
    return out


def residual_wiener_blend(denoised: torch.Tensor, noisy: torch.Tensor, window: int = DEFAULT_WINDOW,
                          noise_factor: float = 1.0, out: torch.Tensor | None = None) -> torch.Tensor:
    """(B, C, H, W) -> same; per image, a convex per-pixel blend of `denoised` and `noisy` (`noise_factor`
    scales the noise variance that the residual must exceed before the input comes back).

    The local statistics and the blend run a band of rows at a time (nn/bands.py: the same values as on
    the whole image), and `out` (which may be `denoised` itself) takes the result: a 12 MP photo then needs
    two single-channel maps (48 MB each) beyond its images, not five full-colour temporaries."""
    half = window // 2
    energy = map_local(lambda d, n: residual_energy(d, n, window), (denoised, noisy), half)
    activity = map_local(lambda n: input_activity(n, window), (noisy,), half)
    noise_var = noise_factor * flat_area_median(energy, activity)
    del activity
    return blend_by_energy(denoised, noisy, energy, noise_var, out)


def residual_guard(denoised: torch.Tensor, noisy: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """The strict blend: the input back only where far more than noise was removed (see the module's doc)."""
    return residual_wiener_blend(denoised, noisy, noise_factor=GUARD_NOISE_FACTOR, out=out)
