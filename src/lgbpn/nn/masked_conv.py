"""Masked ("blind") convolutions and their exact test-time form.

A blind-spot network must never see the pixel it predicts. AP-BSN zeroes the centre tap of a
3x3/5x5 kernel; LG-BPN's DSPMC zeroes a whole diamond ("blind patch") around the centre, because
real sRGB noise is spatially correlated and the nearest neighbours leak it.

At test time the reference shrinks the sampling grid of the masked kernel towards its centre by a
ratio r (a deformable convolution with the same offsets at every pixel). Because the offsets do not
depend on the pixel, that operation is an ordinary convolution with a bilinearly resampled kernel:

    K'[R+a, R+b] = sum_ij W[i, j] * tent(a - r(i-c)) * tent(b - r(j-c)),  tent(t) = max(0, 1-|t|)

on an input reflect-padded by R = ceil(r*c) instead of c. That is what `resampled_kernel` builds.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def diamond_mask(size: int, radius: int | None = None) -> torch.Tensor:
    """True = tap kept; False inside the L1 ball |i-c|+|j-c| <= radius (default: c = size//2)."""
    centre = size // 2
    radius = centre if radius is None else radius
    i = torch.arange(size)
    dist = (i[:, None] - centre).abs() + (i[None, :] - centre).abs()
    return dist > radius


def even_grid_mask(size: int, radius: int) -> torch.Tensor:
    """LG-BPN's global-branch mask: taps on the even grid only, minus the radius-`radius` diamond."""
    grid = torch.zeros(size, size, dtype=torch.bool)
    grid[::2, ::2] = True
    return grid & diamond_mask(size, radius)


def centre_mask(size: int) -> torch.Tensor:
    """AP-BSN's mask: every tap but the centre."""
    mask = torch.ones(size, size, dtype=torch.bool)
    mask[size // 2, size // 2] = False
    return mask


def _support_radius(ratio: float, centre: int) -> int:
    reach = ratio * centre
    nearest = round(reach)
    # An integer reach puts the outermost taps exactly on pixels: no extra ring is needed.
    return nearest if abs(reach - nearest) < 1e-9 else math.floor(reach) + 1


def resampled_kernel(weight: torch.Tensor, ratio: float) -> tuple[torch.Tensor, int]:
    """The dense kernel equal to sampling `weight`'s taps on a grid shrunk by `ratio`.

    Returns (kernel of size 2R+1, R). Computed in float64 so the only error left is the final
    float32 convolution's rounding.
    """
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"test-time ratio must be in (0, 1], got {ratio}")
    size = weight.shape[-1]
    centre = size // 2
    radius = _support_radius(ratio, centre)
    taps = ratio * (torch.arange(size, dtype=torch.float64, device=weight.device) - centre)
    grid = torch.arange(-radius, radius + 1, dtype=torch.float64, device=weight.device)
    tent = (1 - (grid[:, None] - taps[None, :]).abs()).clamp(min=0)  # (2R+1, size)
    kernel = torch.einsum("ai,ocij,bj->ocab", tent, weight.detach().double(), tent)
    return kernel.to(weight.dtype), radius


class MaskedConv2d(nn.Conv2d):
    """A convolution whose weight is multiplied by a fixed 0/1 mask in every forward.

    The mask is applied functionally (never by mutating the parameter), so the network stays
    exactly blind whatever its stored weights hold, and masked taps get zero gradient.
    `forward(x, ratio)` with a ratio runs the test-time shrunk-grid convolution.
    """

    def __init__(self, in_ch: int, out_ch: int, mask: torch.Tensor, padding_mode: str = "reflect"):
        size = mask.shape[-1]
        super().__init__(in_ch, out_ch, size, padding=0, bias=True)
        self.pad_mode = "constant" if padding_mode == "zeros" else padding_mode
        self.register_buffer("mask", mask.to(self.weight.dtype)[None, None], persistent=False)
        # A mask that keeps only the even grid is a dilated conv with a 4x smaller kernel.
        self.grid_step = 2 if not (mask[1::2].any() or mask[:, 1::2].any()) else 1

    def masked_weight(self) -> torch.Tensor:
        return self.weight * self.mask

    def reach(self, ratio: float | None = None) -> int:
        """How far from its output pixel the convolution reads (and reflect-pads the input)."""
        centre = self.kernel_size[0] // 2
        return centre if ratio is None else _support_radius(ratio, centre)

    def forward(self, x: torch.Tensor, ratio: float | None = None) -> torch.Tensor:
        weight = self.masked_weight()
        if ratio is None or ratio == 1.0:
            step, pad = self.grid_step, self.reach()
            weight = weight[..., ::step, ::step]
            return F.conv2d(F.pad(x, (pad,) * 4, mode=self.pad_mode), weight, self.bias, dilation=step)
        kernel, pad = resampled_kernel(weight, ratio)
        return F.conv2d(F.pad(x, (pad,) * 4, mode=self.pad_mode), kernel, self.bias)
