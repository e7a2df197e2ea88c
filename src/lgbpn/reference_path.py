"""The reference implementation's test-time masked convolution, re-expressed for comparison.

The reference samples every tap of the masked kernel on a grid shrunk by `ratio` (a deformable
convolution with zero learned offsets), materialising a k*k-times larger map, and convolves it with
stride k; to survive that memory it cuts the input into four overlapping quadrants (recursively
for large inputs). We compute the same thing as one dense convolution (`MaskedConv2d`); this module
is the straightforward "before" used by the equivalence tests and by `lgbpn bench`.
"""

import math
from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F

from .nn.masked_conv import MaskedConv2d


def sample_taps(x: torch.Tensor, size: int, ratio: float) -> torch.Tensor:
    """(B,C,H,W) -> (B,C,H*size,W*size): tap (i,j) of pixel (y,x) at (y*size+i, x*size+j)."""
    b, c, h, w = x.shape
    centre = size // 2
    xp = F.pad(x, (centre,) * 4, mode="reflect")
    taps = x.new_empty(b, c, h, size, w, size)
    for i in range(size):
        dy = ratio * (i - centre)
        y0 = math.floor(dy)
        fy = dy - y0
        for j in range(size):
            dx = ratio * (j - centre)
            x0 = math.floor(dx)
            fx = dx - x0

            def at(oy, ox, weight):
                # Taps with zero weight may lie past the padded border (ratio 1): skip them.
                if weight == 0:
                    return 0.0
                return weight * xp[..., centre + oy : centre + oy + h, centre + ox : centre + ox + w]

            taps[:, :, :, i, :, j] = (
                at(y0, x0, (1 - fy) * (1 - fx))
                + at(y0, x0 + 1, (1 - fy) * fx)
                + at(y0 + 1, x0, fy * (1 - fx))
                + at(y0 + 1, x0 + 1, fy * fx)
            )
    return taps.view(b, c, h * size, w * size)


def sampled_masked_conv(conv: MaskedConv2d, x: torch.Tensor, ratio: float) -> torch.Tensor:
    size = conv.kernel_size[0]
    return F.conv2d(sample_taps(x, size, ratio), conv.masked_weight(), conv.bias, stride=size)


def chopped(fn, x: torch.Tensor, shave: int, min_size: int) -> torch.Tensor:
    """The reference's forward_chop: four overlapping quadrants, recursing while they are large."""
    h, w = x.shape[-2:]
    top, bottom = slice(0, h // 2 + shave), slice(h - h // 2 - shave, h)
    left, right = slice(0, w // 2 + shave), slice(w - w // 2 - shave, w)
    quads = [x[..., top, left], x[..., top, right], x[..., bottom, left], x[..., bottom, right]]
    if h * w < 4 * min_size:
        outs = [fn(q) for q in quads]
    else:
        outs = [chopped(fn, q, shave, min_size) for q in quads]
    y = outs[0].new_empty(*outs[0].shape[:2], h, w)
    hh, hw = h // 2, w // 2
    y[..., :hh, :hw] = outs[0][..., :hh, :hw]
    y[..., :hh, hw:] = outs[1][..., :hh, outs[1].shape[-1] - (w - hw):]
    y[..., hh:, :hw] = outs[2][..., outs[2].shape[-2] - (h - hh):, :hw]
    y[..., hh:, hw:] = outs[3][..., outs[3].shape[-2] - (h - hh):, outs[3].shape[-1] - (w - hw):]
    return y


# The reference's quadrant overlap and recursion threshold for its 9x9 and 21x21 masked convs.
CHOP_SETTINGS = {9: (8, 200_000), 21: (11, 80_000)}


@contextmanager
def reference_test_path(model: nn.Module):
    """Run `model`'s test-time masked convolutions the reference's way (sampling + quadrants)."""
    convs = [m for m in model.modules() if isinstance(m, MaskedConv2d)]
    for conv in convs:
        fast = conv.forward
        shave, min_size = CHOP_SETTINGS.get(conv.kernel_size[0], (conv.kernel_size[0], 200_000))

        def forward(x, ratio=None, conv=conv, fast=fast, shave=shave, min_size=min_size):
            if ratio is None:
                return fast(x)
            return chopped(lambda q: sampled_masked_conv(conv, q, ratio), x, shave, min_size)

        conv.forward = forward
    try:
        yield model
    finally:
        for conv in convs:
            del conv.forward
