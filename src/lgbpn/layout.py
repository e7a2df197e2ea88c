"""Array layouts: images are H x W x C NumPy arrays, networks take (N, C, H, W) torch tensors.

The two layout functions move the channel axis and nothing else, so a batch axis goes along: add
or drop it with `[None]` / `[0]`. Grey images have one channel; a 3-channel network sees them as RGB.
"""

import numpy as np
import torch


def to_channels_first(pixels: np.ndarray) -> torch.Tensor:
    """(..., H, W, C) array -> (..., C, H, W) contiguous tensor of its own.

    A copy: torch cannot share read-only or negatively strided arrays, and a channels-first view
    of a colour image is not contiguous anyway.
    """
    return torch.from_numpy(np.moveaxis(pixels, -1, -3).copy())


def to_channels_last(x: torch.Tensor) -> np.ndarray:
    """(..., C, H, W) tensor -> (..., H, W, C) contiguous array on the CPU."""
    return np.ascontiguousarray(x.detach().cpu().movedim(-3, -1).numpy())


def grey_to_rgb(image, axis: int = -1):
    """One channel on `axis` -> three equal ones; an image with more channels as it is.

    `image` is a NumPy array (channels last: the default axis) or a tensor (channels first: axis=-3).
    """
    if image.shape[axis] != 1:
        return image
    return image.repeat_interleave(3, axis) if isinstance(image, torch.Tensor) else np.repeat(image, 3, axis)


def rgb_to_grey(image, axis: int = -1):
    """Three channels on `axis` -> one, their mean: how a grey image comes back from an RGB network."""
    return image.mean(axis=axis, keepdims=True)
