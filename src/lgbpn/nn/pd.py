"""Pixel-shuffle down-sampling (PD) and its inverse.

PD with factor f splits an image into f*f sub-images x[..., i::f, j::f]. Neighbouring pixels of a
sub-image are f pixels apart in the image, so spatially correlated noise looks almost white to a
blind-spot network run on them. Two layouts are used by the reference methods:

* tiled: the f x f sub-images, each zero-padded by `pad`, laid out as one big image (training;
  AP-BSN at test time). The network's receptive field crosses the zero gaps.
* batched: each sub-image reflect-padded by `pad` and stacked into the batch (LG-BPN at test
  time), so sub-images never see each other.
"""

import torch
import torch.nn.functional as F


def pd_tiled(x: torch.Tensor, factor: int, pad: int = 0) -> torch.Tensor:
    """(B,C,H,W) -> (B,C,H+2fp,W+2fp); H and W must be multiples of `factor`."""
    b, c, h, w = x.shape
    sub = F.pixel_unshuffle(x, factor)
    if pad:
        sub = F.pad(sub, (pad,) * 4)
    sh, sw = sub.shape[-2:]
    sub = sub.view(b, c, factor, factor, sh, sw).permute(0, 1, 2, 4, 3, 5)
    return sub.reshape(b, c, factor * sh, factor * sw)


def pd_tiled_inverse(y: torch.Tensor, factor: int, pad: int = 0) -> torch.Tensor:
    b, c, th, tw = y.shape
    sh, sw = th // factor, tw // factor
    sub = y.reshape(b, c, factor, sh, factor, sw).permute(0, 1, 2, 4, 3, 5)
    sub = sub.reshape(b, c * factor * factor, sh, sw)
    if pad:
        sub = sub[..., pad:-pad, pad:-pad]
    return F.pixel_shuffle(sub, factor)


def pd_batched(x: torch.Tensor, factor: int, pad: int = 0) -> torch.Tensor:
    """(B,C,H,W) -> (B*f*f, C, H/f+2p, W/f+2p), sub-image (i, j) of image b at batch b*f*f+i*f+j."""
    b, c, h, w = x.shape
    sub = F.pixel_unshuffle(x, factor)
    if pad:
        sub = F.pad(sub, (pad,) * 4, mode="reflect")
    sh, sw = sub.shape[-2:]
    sub = sub.view(b, c, factor * factor, sh, sw).transpose(1, 2)
    return sub.reshape(b * factor * factor, c, sh, sw)


def pd_batched_inverse(y: torch.Tensor, factor: int, pad: int = 0) -> torch.Tensor:
    n, c, sh, sw = y.shape
    sub = y.reshape(n // (factor * factor), factor * factor, c, sh, sw).transpose(1, 2)
    sub = sub.reshape(-1, c * factor * factor, sh, sw)
    if pad:
        sub = sub[..., pad:-pad, pad:-pad]
    return F.pixel_shuffle(sub, factor)


def pad_to_multiple(x: torch.Tensor, factor: int, mode: str = "reflect") -> torch.Tensor:
    """Pad bottom and right so both sides are multiples of `factor` (crop back with [..., :h, :w])."""
    h, w = x.shape[-2:]
    ph, pw = -h % factor, -w % factor
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x


def reflect_indices(n: int, before: int, after: int, device=None) -> torch.Tensor:
    """Indices of a reflect-padded axis of length n, for any pad width (repeats the reflection)."""
    idx = torch.arange(-before, n + after, device=device)
    if n == 1:
        return torch.zeros_like(idx)
    period = 2 * (n - 1)
    idx = idx.remainder(period)
    return torch.where(idx >= n, period - idx, idx)


def pad_reflect_any(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """Reflect padding that, unlike F.pad, accepts pads as large as (or larger than) the image; no pads: `x`
    itself (not a copy)."""
    h, w = x.shape[-2:]
    if not (top or bottom or left or right):
        return x
    if max(top, bottom) < h and max(left, right) < w and x.ndim == 4 and x.is_floating_point():
        return F.pad(x, (left, right, top, bottom), mode="reflect")  # the same values, far faster than the gather
    rows = reflect_indices(h, top, bottom, x.device)
    cols = reflect_indices(w, left, right, x.device)
    return x[..., rows[:, None], cols[None, :]]
