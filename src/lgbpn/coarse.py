"""A second, coarse pass against coarse colour noise.

Heavy camera noise leaves colour blotches a few pixels wide that a student, which sees about 70 pixels,
keeps: its targets keep them (the teacher's low-frequency correction restores the input's low
frequencies). Halved (2 x 2 means), the same blotches are fine noise that the student removes. So the
student also runs on the halved image, and the chroma of the low frequencies (Gaussian, sigma
COARSE_SIGMA) of the difference between that pass, upsampled, and the full-scale output is added to the
output; luma and fine detail stay the full-scale pass's:

    out = d + chroma(G(up(student(halve(noisy))) - d)),   chroma(v) = v - its channel mean

Network alone, every image (docs/training.md): SIDD 33.77 -> 33.97 dB (all 9 images gain, 0.04 to 0.35),
PolyU 38.14 -> 38.23, the demo unchanged, two cameras the student never saw +0.04 / +0.10. It costs a
quarter more network time, so "auto" runs it where the noise is heavy (measured sigma at least
noise.LIGHT_NOISE_SIGMA, as the Wiener blend's "auto"): where the gain is largest.
"""

import math

import torch
import torch.nn.functional as F

from .nn.bands import map_local
from .nn.lowpass import gaussian_blur
from .noise import LIGHT_NOISE_SIGMA, NoiseProfile

COARSE_SIGMA = 2.0
BLUR_RADIUS = math.ceil(3 * COARSE_SIGMA)  # gaussian_blur's own radius: the context each output pixel needs


def coarse_suits(profile: NoiseProfile | None) -> bool:
    """Whether "auto" runs the coarse pass on an image with this measured noise (heavy noise only)."""
    return profile is not None and profile.sigma >= LIGHT_NOISE_SIGMA


def halve(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, ceil(H/2), ceil(W/2)): 2 x 2 means, an odd last row or column repeated."""
    h, w = x.shape[-2:]
    return F.avg_pool2d(F.pad(x, (0, w % 2, 0, h % 2), mode="replicate"), 2)


def upsample(coarse: torch.Tensor, rows: slice, cols: slice) -> torch.Tensor:
    """Rows and columns (within the full-size image) of `coarse` upsampled 2x (bilinear, pixel centres
    aligned): the same values as upsampling the whole and cropping, from only the coarse pixels they need."""
    def span(part: slice, size: int) -> tuple[int, int]:
        return max(0, part.start // 2 - 1), min(size, (part.stop + 1) // 2 + 1)

    (top, bottom), (left, right) = span(rows, coarse.shape[-2]), span(cols, coarse.shape[-1])
    up = F.interpolate(coarse[..., top:bottom, left:right], scale_factor=2, mode="bilinear", align_corners=False)
    # The crop's own edges clamp differently from the whole image's, but only the margin added above reaches them.
    return up[..., rows.start - 2 * top : rows.stop - 2 * top, cols.start - 2 * left : cols.stop - 2 * left]


def chroma_from_coarse(denoised: torch.Tensor, coarse_up: torch.Tensor) -> torch.Tensor:
    """denoised + chroma(G(coarse_up - denoised)), (B, 3, H, W); exact wherever BLUR_RADIUS pixels of context
    (or the image's edge) surround a pixel."""
    low = gaussian_blur(coarse_up - denoised, COARSE_SIGMA)
    return denoised + (low - low.mean(dim=1, keepdim=True))


def apply_coarse_pass(denoised: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
    """The whole (B, 3, H, W) output corrected by `coarse`, the network's output on halve(noisy), a band of
    rows at a time (nn/bands.py)."""
    h, w = denoised.shape[-2:]
    up = upsample(coarse, slice(0, h), slice(0, w))
    return map_local(chroma_from_coarse, (denoised, up), BLUR_RADIUS)
