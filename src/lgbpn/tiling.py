"""Denoising images of any size in bounded memory: overlapping tiles, stitched by their cores.

Each tile is processed with `overlap` extra pixels of context on every side that exist in the
image; only its core is kept. Tile origins are multiples of the model's PD alignment, so a tile's
sub-images have the same phases as the whole image's, and R3 masks are drawn by global position.
Where the overlap covers the receptive field, the stitched result equals the untiled one.
(LG-BPN's channel attention has a whole-image context, so there the match is close, not exact.)
"""

import math

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from .nn.pd import pad_reflect_any
from .nn.r3 import R3_PASSES, R3_PROB, denoise_r3, r3_masks

DEFAULT_OVERLAP = 48
# Activation memory per network call; sets the automatic tile size and how many R3 passes share a call.
MEMORY_BUDGET_BYTES = 3 << 30


def prepare_for_inference(model: nn.Module, device: torch.device | str = "cpu") -> nn.Module:
    """The model on `device` in eval mode with channels-last (NHWC) weights, in place.

    NHWC weights make oneDNN run every conv channels-last, which vectorises the depthwise convs
    over channels (LG-BPN 1.24x, lgbpn-s ~1.3x faster on CPU, same values to round-off). Training
    keeps the default layout: switching it mid-run would change rounding between a run and its
    resume. Done outside inference mode so the model can still be fine-tuned (--adapt).
    """
    with torch.inference_mode(False):
        return model.to(device, memory_format=torch.channels_last).eval()


def pixels_per_call(model: nn.Module) -> int:
    return int(MEMORY_BUDGET_BYTES / (4 * model.floats_per_pixel()))


def auto_tile(model: nn.Module, overlap: int) -> int:
    """The largest tile whose window (tile + overlap on both sides) fits the memory budget."""
    window = int(math.sqrt(pixels_per_call(model)))
    return min(1024, max(64, window - 2 * overlap))


def _spans(length: int, tile: int, overlap: int, align: int) -> list[tuple[int, int, int, int]]:
    """(window start, window end, core start, core end) along one axis."""
    spans = []
    for core_start in range(0, length, tile):
        core_end = min(core_start + tile, length)
        start = max(0, (core_start - overlap) // align * align)
        spans.append((start, min(length, core_end + overlap), core_start, core_end))
    return spans


def plan_tiles(model: nn.Module, h: int, w: int, tile: int | None = None, overlap: int | None = None):
    """Row and column spans of the tiles of an h x w image (tile and overlap aligned to PD)."""
    align = model.alignment()
    overlap = DEFAULT_OVERLAP if overlap is None else overlap
    overlap = math.ceil(overlap / align) * align
    tile = auto_tile(model, overlap) if tile is None else tile
    tile = max(align, tile // align * align)
    return _spans(h, tile, overlap, align), _spans(w, tile, overlap, align)


@torch.inference_mode()
def denoise_tiled(
    model: nn.Module,
    x: torch.Tensor,
    *,
    r3: bool = True,
    passes: int = R3_PASSES,
    prob: float = R3_PROB,
    seed: int = 0,
    tile: int | None = None,
    overlap: int | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Denoise a (B, C, H, W) float batch on the 0..255 scale; returns the same shape."""
    rows, cols = plan_tiles(model, *x.shape[-2:], tile, overlap)
    out = torch.empty_like(x)
    with tqdm(total=len(rows) * len(cols), desc="tiles", unit="tile", disable=not progress, leave=False) as bar:
        for y0, y1, cy0, cy1 in rows:
            for x0, x1, cx0, cx1 in cols:
                window = x[..., y0:y1, x0:x1]
                result = _denoise_window(model, window, (y0, x0), r3, passes, prob, seed)
                out[..., cy0:cy1, cx0:cx1] = result[..., cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
                bar.update()
    return out


def _denoise_window(model, window, origin, r3, passes, prob, seed) -> torch.Tensor:
    h, w = window.shape[-2:]
    smallest = model.min_size()
    # Too small for the network's reflect pads: mirror the window up to size and crop back.
    grown = pad_reflect_any(window, 0, max(0, smallest - h), 0, max(0, smallest - w))
    padded_shape = model.pad_for_inference(grown[:1, :1, :, :]).shape[-2:]
    shape = (grown.shape[0], grown.shape[1], *padded_shape)
    masks = r3_masks(shape, passes, prob, seed, origin) if r3 else None
    pass_batch = max(1, pixels_per_call(model) // (shape[0] * shape[2] * shape[3]))
    return denoise_r3(model, grown, masks, pass_batch)[..., :h, :w]
