"""Denoising images of any size in bounded memory: overlapping tiles, stitched by their cores.

Each tile is processed with `overlap` extra pixels of context on every side that exist in the
image; only its core is kept. Tile origins are multiples of the model's PD alignment, so a tile's
sub-images have the same phases as the whole image's, and R3 masks are drawn by global position.
Where the overlap covers the receptive field, the stitched result equals the untiled one.
(LG-BPN's channel attention has a whole-image context, so there the match is close, not exact,
and its output depends on the tile size: its default tile is fixed, see options.DEFAULT_TILE.)
"""

import math
from collections.abc import Callable
from contextlib import contextmanager

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from .nn.pd import pad_reflect_any
from .nn.r3 import denoise_r3, r3_masks
from .noise import told_noise
from .options import DEFAULT_OVERLAP, InferenceOptions
from .precision import autocast, resolve_precision

# Activation memory per network call: how many R3 passes share a call (not the tile size).
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


def _spans(length: int, tile: int, overlap: int, align: int) -> list[tuple[int, int, int, int]]:
    """(window start, window end, core start, core end) along one axis."""
    spans = []
    for core_start in range(0, length, tile):
        core_end = min(core_start + tile, length)
        start = max(0, (core_start - overlap) // align * align)
        spans.append((start, min(length, core_end + overlap), core_start, core_end))
    return spans


def _even_spans(length: int, tile: int, overlap: int, align: int) -> list[tuple[int, int, int, int]]:
    """As _spans, as many tiles, but every window of one size once padded to `align` (the last one ends at the
    image's edge, its start aligned): the network then meets one input shape, and oneDNN builds its kernels once.
    Exact only for a network with a bounded context within `overlap`."""
    count = math.ceil(length / tile)
    if count == 1:
        return [(0, length, 0, length)]
    # Consecutive windows overlap by 2 x overlap, plus one alignment of slack for the rounded starts.
    size = math.ceil((length + (count - 1) * (2 * overlap + align)) / count / align) * align
    if size >= length:
        return [(0, length, 0, length)]
    last = math.ceil((length - size) / align) * align
    starts = sorted({i * last // (count - 1) // align * align for i in range(count)})
    bounds = [0, *(start + overlap for start in starts[1:]), length]
    return [(start, min(length, start + size), bounds[i], bounds[i + 1]) for i, start in enumerate(starts)]


def plan_tiles(model: nn.Module, h: int, w: int, tile: int | None = None, overlap: int = DEFAULT_OVERLAP):
    """Row and column spans of the tiles of an h x w image (tile, None for the model's own, and overlap
    aligned to PD; the overlap at least the model's context, so that tiles of a network with a bounded
    context are exact). Such a network gets windows of one shape (_even_spans); one whose output depends on
    the tile keeps fixed tiles."""
    align = model.alignment()
    overlap = math.ceil(max(overlap, model.context()) / align) * align
    tile = model.default_tile() if tile is None else tile
    tile = max(align, tile // align * align)
    spans = _even_spans if model.context() else _spans
    return spans(h, tile, overlap, align), spans(w, tile, overlap, align)


@torch.inference_mode()
def denoise_tiled(model: nn.Module, x: torch.Tensor, options: InferenceOptions | None = None, *,
                  progress: bool | Callable[[int, int], None] = False, **changes) -> torch.Tensor:
    """Denoise a (B, C, H, W) float batch on the 0..255 scale; returns the same shape, on x's device.

    Runs the network as `options` (with `changes` applied) say: R3, seed, tile, overlap, precision.
    The output corrections are left to the caller (`Denoiser` applies them to the whole image).
    `progress`: True draws a bar on stderr; a function is called with (tiles done, tiles) after each tile.
    """
    options = (options or InferenceOptions()).replace(**changes)
    rows, cols = plan_tiles(model, *x.shape[-2:], options.tile, options.overlap)
    out = torch.empty_like(x)
    report = progress if callable(progress) else None
    tiles = [(row, col) for row in rows for col in cols]
    bar = tqdm(total=len(tiles), desc="tiles", unit="tile", disable=progress is not True, leave=False)
    with bar, running(model, x, options, x.device):
        for done, ((y0, y1, cy0, cy1), (x0, x1, cx0, cx1)) in enumerate(tiles, 1):
            window = x[..., y0:y1, x0:x1]
            result = denoise_window(model, window, (y0, x0), options)
            out[..., cy0:cy1, cx0:cx1] = result[..., cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
            bar.update()
            if report is not None:
                report(done, len(tiles))
    return out


@contextmanager
def running(model: nn.Module, noise_source: torch.Tensor, options: InferenceOptions, device: torch.device):
    """Within: `model` runs as `options` say on `device` (precision), told the noise of `noise_source` (a batch
    of the images, or of their central crops that lgbpn.noise measures) if it is noise-aware."""
    with told_noise(model, noise_source), _precision(model, resolve_precision(options.precision, device), device):
        yield


@contextmanager
def _precision(model: nn.Module, precision: str, device: torch.device):
    """bf16 autocast with the network's outputs cast back to float32 (nothing to do for fp32).

    R3 sums its passes in the output's dtype, and bf16 keeps 8 significant bits: steps of 1 at
    128..255 on our scale, of 8 for a sum of eight passes.
    """
    if precision != "bf16":
        yield
        return
    handle = model.register_forward_hook(lambda module, inputs, output: output.float())
    try:
        with autocast(precision, device):
            yield
    finally:
        handle.remove()


# The eight flips and rotations of an image, each with its inverse: the first four keep a window's shape (one set of
# oneDNN kernels); the others transpose it.
DIHEDRAL = (
    (lambda t: t, lambda t: t),
    (lambda t: t.flip(-1), lambda t: t.flip(-1)),
    (lambda t: t.flip(-2), lambda t: t.flip(-2)),
    (lambda t: t.flip(-2, -1), lambda t: t.flip(-2, -1)),
    (lambda t: t.transpose(-2, -1), lambda t: t.transpose(-2, -1)),
    (lambda t: t.rot90(1, (-2, -1)), lambda t: t.rot90(-1, (-2, -1))),
    (lambda t: t.rot90(-1, (-2, -1)), lambda t: t.rot90(1, (-2, -1))),
    (lambda t: t.flip(-2, -1).transpose(-2, -1), lambda t: t.flip(-2, -1).transpose(-2, -1)),
)


def denoise_window(model, window, origin, options: InferenceOptions) -> torch.Tensor:
    """The network's output on one (B, C, h, w) window at `origin` (its top-left in the image), with R3 if
    `options` ask for it (a blind-spot network), or as the mean of `options.ensemble` flips and rotations of the
    window (an ordinary one); run within `running`."""
    h, w = window.shape[-2:]
    smallest = model.min_size()
    # Too small for the network's reflect pads: mirror the window up to size and crop back.
    grown = pad_reflect_any(window, 0, max(0, smallest - h), 0, max(0, smallest - w))
    padded_shape = model.pad_for_inference(grown[:1, :1, :, :]).shape[-2:]
    shape = (grown.shape[0], grown.shape[1], *padded_shape)
    masks = r3_masks(shape, options.passes, options.prob, options.seed, origin) if options.r3 and model.blind_spot else None
    pass_batch = max(1, pixels_per_call(model) // (shape[0] * shape[2] * shape[3]))
    if model.blind_spot or options.ensemble == 1:
        return denoise_r3(model, grown, masks, pass_batch)[..., :h, :w]
    total = None
    for transform, undo in DIHEDRAL[: options.ensemble]:
        out = undo(denoise_r3(model, transform(grown).contiguous(), None))
        total = out if total is None else total.add_(out)
    return total.div_(options.ensemble)[..., :h, :w]
