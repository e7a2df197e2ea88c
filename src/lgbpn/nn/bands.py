"""Whole-image operations a band of rows at a time, so that a 12 MP photo never needs whole-image temporaries.

A local operation (a box mean, a blur: each output pixel depends on the pixels within `halo` rows of it,
with reflect padding at the image's edges) run on a band with `halo` rows of real context on each side
gives the band's rows exactly as on the whole image: the padding that a band's inner edges get only
reaches the context rows, which are cut off. Each whole-image float temporary of a 12 MP RGB photo is
144 MB; a band of BAND_ROWS rows of it is 12 MB.
"""

from collections.abc import Callable, Iterator

import torch

BAND_ROWS = 256


def row_bands(height: int, halo: int = 0) -> Iterator[tuple[slice, slice, slice]]:
    """(rows, with_context, within): a band's rows, the same band widened by up to `halo` rows of context on
    each side, and where the band's own rows lie within the widened one."""
    for top in range(0, height, BAND_ROWS):
        bottom = min(top + BAND_ROWS, height)
        low, high = max(0, top - halo), min(height, bottom + halo)
        yield slice(top, bottom), slice(low, high), slice(top - low, bottom - low)


def map_local(operation: Callable[..., torch.Tensor], images: tuple[torch.Tensor, ...], halo: int) -> torch.Tensor:
    """`operation(*images)` computed a band of rows at a time, for an operation whose output pixel depends on
    the input rows within `halo` of it (see the module's doc); images are (..., H, W) with the same H."""
    height = images[0].shape[-2]
    out = None
    for rows, with_context, within in row_bands(height, halo):
        band = operation(*(image[..., with_context, :] for image in images))
        if out is None:
            out = band.new_empty((*band.shape[:-2], height, band.shape[-1]))
        out[..., rows, :] = band[..., within, :]
    return out
