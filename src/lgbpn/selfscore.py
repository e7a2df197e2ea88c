"""How good a denoiser is on photos without clean references: its error against a second noisy view.

For a noisy image y = x + n and a noise sample z with n's covariance but independent of it, the
views y + z and y - z carry the noises n + z and n - z, which are uncorrelated (Cov = S - S = 0).
So for any denoiser f, E|f(y + z) - (y - z)|^2 = E|f(y + z) - x|^2 + 2 E|n|^2: its error on the
image with twice the noise variance, plus a term that is the same for every denoiser scored on the
same views (Recorrupted-to-Recorrupted, Pang et al., CVPR 2021). The noise sample is a reference
denoiser's residual y - g(y) moved half the image away: it has the camera's own spatial and colour
correlation, and is independent of the noise where it lands. But a denoiser's residual holds less than
the whole noise (what the denoiser leaves, mostly its coarse part, is missing), and with z weaker than n
the views' noises are correlated (Cov = S - S_z > 0): the score then credits an output for keeping noise,
and ranks a student that denoises less above one that denoises more. So the residual is scaled up, per
image by how much of the noise it holds on the image's flat blocks (noise.residual_share, SHARE_FACTOR), for
keep-base and for the held-out selection in training alike. A blind-spot network needs
no second view: its output at a pixel does not depend on that pixel's noise, so E|f(y) - y|^2 =
E|f(y) - x|^2 + E|n|^2 (Noise2Self); `blind_spot_error` is that.

Scores are in dB, 10 log10(255^2 / error), higher is better; only differences between models scored
on the same crops mean anything. benchmarks/selfscore.py checks that they rank models as PSNR to
clean references does on the dev sets.
"""

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .nn.wiener import local_mean
from .noise import BLOCK, residual_share
from .options import KEEP_BASE_MARGIN as MARGIN
from .options import KEEP_BASE_REGION as REGION

# The second views: the reference residual rolled by these fractions of (height, width).
VIEW_SHIFTS = ((0.5, 0.5), (0.5, 0.0))
# On PolyU's flattest blocks a student's residual holds about 0.7 of the noise's amplitude (far differences as in
# noise.py; median over 50 photos). benchmarks/selfscore.py (512 px crops, the shipped student's residual, 9
# candidates from the noisy input to blurred and half-denoised outputs and earlier students;
# results/selfscore.json, selfscore_unscaled.json): Spearman of the candidates' means with their PSNR on PolyU (50)
# 0.58 unscaled, 0.92 at 1.5; on SIDD (9) 0.68 and 0.98; pairs of candidates on one image ordered as by PSNR 73% ->
# 87% and 80% -> 95%. The pair `--keep-base` decides, a student and its fine-tuned successor (the student before
# and after its second sharpened-target stage, docs/training.md), ordered as by PSNR on 28% -> 84% of PolyU and
# 100% -> 89% of SIDD; blurring (sigma 0.7) on 44% -> 64% and 11% -> 89%. The leave-camera-out twins of the student
# before and after its first such stage, on the 22 unseen photos: 18% -> 82%.
NOISE_SCALE = 1.5
# Since 2026-12-04 each image's residual is scaled by SHARE_FACTOR / residual_share instead (NOISE_SCALE remains for
# an image too small to measure): the share differs between photos (0.5-0.9 on PolyU's NikonD800 and Sony, ~1 on
# SIDD). benchmarks/selfscore.py, 512 px crops, every second image, 7 candidates (results/selfscore_per_photo.json):
# pairs ordered as by PSNR on PolyU (25) 83.7% at 1.5, 85.8% at 1.0 / share, 84.0% at 1.2 / share; on SIDD (5)
# 87.8%, 83.3%, 89.4%. The keep-base decision on the 22 unseen photos of the leave-camera-out route (a second loco
# twin, runs/cS3, adapted with --adapt 50: better than its start by PSNR on most photos, +0.19 dB on average): the
# score agreed with PSNR on 59% of them at 1.5, 50% at 1.0 / share, 77% at 1.2 / share, and picking by it kept
# +0.09, +0.13 and +0.19 dB of the gain.
SHARE_FACTOR = 1.2
SCALE_RANGE = (1.0, 3.0)  # a reference that removes almost nothing says little about the noise: its scale is bounded

Denoise = Callable[[torch.Tensor], torch.Tensor]


def sample_scale(noisy: torch.Tensor, residual: torch.Tensor) -> float:
    """The scale of a (C, H, W) 0..255 image's reference residual that makes it hold the whole noise."""
    if min(noisy.shape[-2:]) < 2 * BLOCK:
        return NOISE_SCALE
    share = residual_share(noisy, residual)
    return min(max(SHARE_FACTOR / share, SCALE_RANGE[0]), SCALE_RANGE[1]) if share > 0 else SCALE_RANGE[1]


def noise_samples(noisy: torch.Tensor, reference: torch.Tensor, scale: float | None = None) -> list[torch.Tensor]:
    """(B, C, H, W) noisy images and a reference denoiser's output -> noise samples, one per second view: its
    residual times `scale` (default: each image's sample_scale), moved."""
    residual = noisy - reference
    if scale is None:
        scales = [sample_scale(x, r) for x, r in zip(noisy, residual)]
        residual = residual * torch.tensor(scales, dtype=residual.dtype, device=residual.device).reshape(-1, 1, 1, 1)
    else:
        residual = scale * residual
    h, w = noisy.shape[-2:]
    return [torch.roll(residual, (int(h * dy), int(w * dx)), (-2, -1)) for dy, dx in VIEW_SHIFTS]


def view_error(denoise: Denoise, noisy: torch.Tensor, samples: list[torch.Tensor]) -> torch.Tensor:
    """(B, 1, H, W): per pixel, the squared error of denoise(y + z) against y - z, averaged over the
    samples and the channels."""
    error = torch.zeros_like(noisy[:, :1])
    for z in samples:
        error += (denoise(noisy + z) - (noisy - z)).square().mean(1, keepdim=True)
    return error / len(samples)


def blind_spot_error(denoise: Denoise, noisy: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W): a blind-spot network's squared error against the noisy image itself."""
    return (denoise(noisy) - noisy).square().mean(1, keepdim=True)


def error_db(error: torch.Tensor) -> float:
    """A mean squared error on the 0..255 scale, in dB (higher is better)."""
    return 10 * math.log10(255.0**2 / max(float(error.mean()), 1e-12))


def keep_base_mask(error: torch.Tensor, base_error: torch.Tensor, region: int = REGION, margin: float = MARGIN) -> torch.Tensor:
    """(B, 1, H, W) weights in 0..1: 1 in the regions where `error` is not lower than `base_error` by more
    than `margin` (a share) on average, feathered over a sixteenth of a region so that no seam shows."""
    h, w = error.shape[-2:]
    mean = lambda e: F.avg_pool2d(e, region, ceil_mode=True)  # noqa: E731 (border regions: their own pixels)
    keep = (mean(error) > (1 - margin) * mean(base_error)).to(error.dtype)
    keep = F.interpolate(keep, scale_factor=region, mode="nearest")[..., :h, :w]
    return local_mean(keep, 2 * (region // 32) + 1)
