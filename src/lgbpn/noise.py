"""How strong and how spatially correlated an image's noise is, measured from the noisy image alone.

Camera noise in sRGB is correlated over a few pixels (demosaicking, denoising, JPEG), so white-noise
estimators that look at neighbouring pixels see only part of it. Here the noise variance is read
from differences between pixels `d` apart: on flat content Var(x[p] - x[p+d]) = 2 sigma^2 (1 - rho(d)),
so near pixels (d = 1) give sigma^2 (1 - rho(1)) and far ones (beyond the correlation length, rho ~ 0)
give sigma^2. Flat content is found in blocks whose smoothed image varies least (smoothing removes the
noise, not the structure); blocks with clipped pixels are left out, as clipping hides the noise.
"""

from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

BLOCK = 16
NEAR, FAR = 1, 4  # pixels apart; sRGB camera noise decorrelates within ~3 pixels
FLAT_SHARE = 0.3  # the flattest share of blocks the variances are read from
CLIP_SHARE = 0.02  # a block with more clipped pixels than this is left out
MAX_SIDE = 1024  # larger images are measured on their central MAX_SIDE x MAX_SIDE crop

# `--preset auto`, read off benchmarks/presets.py (docs/results.md, "Presets"): for the network's own output,
# the "light" preset's smaller blind patch keeps detail that weak noise does not justify losing
# (PolyU, sigma 0.7-4.2: +2.4 dB over "sidd"), and lets correlated noise through on heavy noise
# (SIDD, sigma 10-29: -0.8 dB). The threshold sits between the two (geometric mean, rounded).
# With the output corrections on, the Wiener blend already gives detail back per pixel, and "sidd"
# under the corrections scores best on both sets. The Wiener blend's "auto" option uses the same
# threshold (see corrections.py).
LIGHT_NOISE_SIGMA = 6.0

# A student (an ordinary network distilled from a blind-spot teacher) does not extrapolate to noise
# heavier than any it was distilled on; the blind-spot teacher does. The denoiser hands an image
# whose noise exceeds the student's noisiest training input by this factor to the teacher.
STUDENT_NOISE_MARGIN = 1.25


@dataclass(frozen=True)
class NoiseProfile:
    sigma: float  # noise standard deviation, 0..255 scale
    correlation: float  # rho(1): 0 for white noise, towards 1 for noise smooth over several pixels


def _block_means(x: torch.Tensor) -> torch.Tensor:
    """(C, H, W) -> (C, H // BLOCK, W // BLOCK) means over BLOCK x BLOCK blocks."""
    return F.avg_pool2d(x[None], BLOCK)[0]


def _difference_variance(x: torch.Tensor, d: int) -> torch.Tensor:
    """Per block, half the mean squared difference of pixels d apart (rows and columns), channels averaged."""
    h, w = x.shape[-2:]
    sq = torch.zeros(h, w, dtype=x.dtype)
    sq[:, : w - d] += (x[..., :, d:] - x[..., :, :-d]).square().mean(0)
    sq[: h - d, :] += (x[..., d:, :] - x[..., :-d, :]).square().mean(0)
    return _block_means(sq[None] / 4)[0]  # two directions, and Var(a - b) = 2 sigma^2


def measured_region(height: int, width: int) -> tuple[slice, slice]:
    """The rows and columns of an image that its noise is measured on: the central MAX_SIDE x MAX_SIDE crop."""
    top, left = (max(0, (s - MAX_SIDE) // 2) for s in (height, width))
    return slice(top, top + MAX_SIDE), slice(left, left + MAX_SIDE)


def _in_whole_blocks(image: torch.Tensor) -> torch.Tensor:
    """The measured region of a (C, H, W) image (measured_region), float32 on the CPU, cut to whole blocks.
    float32, not 64: 4x faster (0.13 -> 0.03 s for a 12 MP photo's 1024 px crop), sigma the same to 1e-6."""
    rows, cols = measured_region(*image.shape[-2:])
    x = image.detach()[..., rows, cols].to(torch.float32).cpu()
    h, w = (s // BLOCK * BLOCK for s in x.shape[-2:])
    return x[..., :h, :w]


def _measured_blocks(image: torch.Tensor, peak: float = 255.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, H, W) float image on the 0..peak scale -> its measured region on the 0..255 scale (float32, whole
    blocks) and the mask of its flat, unclipped blocks, which the noise is read from."""
    if min(image.shape[-2:]) < 2 * BLOCK:
        raise ValueError(f"image too small to measure its noise: {tuple(image.shape[-2:])}, need {2 * BLOCK}x{2 * BLOCK}")
    x = _in_whole_blocks(image) * (255.0 / peak)
    clipped = _block_means(((x <= 0) | (x >= 255)).to(x.dtype).mean(0, keepdim=True))[0]
    smooth = F.avg_pool2d(x[None], 4)  # 4x4 means: noise down 4x (less when correlated), structure kept
    structure = (F.avg_pool2d(smooth.square(), BLOCK // 4) - F.avg_pool2d(smooth, BLOCK // 4).square()).mean(1)[0]
    usable = clipped <= CLIP_SHARE
    if usable.sum() < 4:  # mostly clipped: fall back to every block
        usable = torch.ones_like(usable)
    return x, usable & (structure <= structure[usable].quantile(FLAT_SHARE))


def noise_profile(image: torch.Tensor, peak: float = 255.0) -> NoiseProfile:
    """(C, H, W) float image on the 0..peak scale -> its noise level and neighbour correlation."""
    x, flat = _measured_blocks(image, peak)
    near = _difference_variance(x, NEAR)[flat].median()
    far = _difference_variance(x, FAR)[flat].median()
    correlation = float((1 - near / far).clamp(0, 1)) if far > 0 else 0.0
    return NoiseProfile(sigma=float(far.sqrt()), correlation=correlation)


def residual_share(image: torch.Tensor, residual: torch.Tensor) -> float:
    """How much of a (C, H, W) 0..255 image's noise amplitude a denoiser's residual (image - output) holds, read
    where the noise is measured (the image's flat blocks, pixels FAR apart): 1 for a residual that is the whole
    noise, less for a denoiser that leaves some."""
    x, flat = _measured_blocks(image)
    noise, kept = (_difference_variance(v, FAR)[flat].median() for v in (x, _in_whole_blocks(residual)))
    return float((kept / noise).sqrt()) if noise > 0 else 1.0


def measure_noise(image: torch.Tensor) -> NoiseProfile | None:
    """noise_profile of a (C, H, W) 0..255 image, or None for an image too small to measure."""
    return noise_profile(image) if min(image.shape[-2:]) >= 2 * BLOCK else None


def noise_levels(batch: torch.Tensor) -> torch.Tensor:
    """(B,) noise sigma of each (C, H, W) 0..255 image of a batch, as a noise-aware network is told it
    (0 for an image too small to measure)."""
    profiles = [measure_noise(image) for image in batch]
    return torch.tensor([p.sigma if p is not None else 0.0 for p in profiles], dtype=torch.float32)


@contextmanager
def told_noise(model: torch.nn.Module, batch: torch.Tensor):
    """Within: a noise-aware network (`noise_aware`) is told the noise of each image of `batch` (B, C, H, W),
    measured on what it is given (a whole image at inference, so every tile hears the same; a crop in training)."""
    if not getattr(model, "noise_aware", False):
        yield
        return
    model.noise_level = noise_levels(batch)
    try:
        yield
    finally:
        model.noise_level = None


def auto_preset(image: torch.Tensor, corrected: bool) -> tuple[str, NoiseProfile | None]:
    """The test-time preset `--preset auto` runs a (C, H, W) 0..255 image with, and the noise it measured
    (None when the corrections decide, or the image is too small to measure: then "sidd")."""
    profile = None if corrected else measure_noise(image)
    return ("light" if profile is not None and profile.sigma < LIGHT_NOISE_SIGMA else "sidd"), profile
