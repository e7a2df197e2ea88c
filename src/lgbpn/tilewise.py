"""A photo denoised tile by tile, from its decoded pixels to its output pixels.

For a network whose output needs nothing beyond a tile's surroundings (a distilled student and its guard,
or a network without output corrections), each tile goes from the decoded array to the output array on
its own: to the network's 0..255 float scale, through the network, the guard and the strength, then
rounded into the output. No whole-image float copy is made: memory is the image's two arrays (input and
output, 6 bytes a pixel for 8-bit RGB) and a few tiles, whatever the image's size, and every step works
on data still in cache.

The guard's noise variance is a whole-image statistic (the median residual energy over the flatter half
of the image, nn/wiener.py) that must be known before the first tile is finished: it is read off tiles
spread over the image that hold about GUARD_SAMPLE_PIXELS, denoised first and held until then. An image of
no more tiles than that is read whole, and its output is bit for bit the whole-image path's.
"""

import math
import time
from collections import Counter
from collections.abc import Callable

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from .coarse import BLUR_RADIUS, chroma_from_coarse, halve, upsample
from .layout import grey_to_rgb, rgb_to_grey
from .nn.bands import BAND_ROWS
from .nn.wiener import DEFAULT_WINDOW, blend_by_energy, flat_area_median, input_activity, residual_energy
from .noise import measured_region
from .options import InferenceOptions
from .tiling import denoise_tiled, denoise_window, plan_tiles, running

# 3.2 MP of statistics (8 of a 12 MP photo's 30 tiles of 672 px, 4 of its 12 tiles of 1008), ~100-200 MB held
GUARD_SAMPLE_PIXELS = 3_200_000
# The networks work on the 0..255 scale of 8-bit images; float images are 0..1.
PEAKS = {torch.uint8: 255.0, torch.uint16: 65535.0}


def to_network_scale(image: torch.Tensor) -> torch.Tensor:
    """uint8 as is, uint16 / 257, float (0..1) x 255 -> a float32 copy on the 0..255 scale the networks take."""
    return image.to(torch.float32, copy=True).mul_(255.0 / PEAKS.get(image.dtype, 1.0))


def from_network_scale(out: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """0..255 float -> `dtype`'s range: floats divided back, integers rounded half up and clipped, a band of
    rows at a time (float64 copies of a whole 12 MP image would double the peak memory). For 8-bit output
    the scale is 1 and float32 rounds alike (x + 0.5 is exact in float32 below 2**22), at half the cost."""
    if dtype.is_floating_point:
        return (out / 255.0).to(dtype)
    peak = PEAKS[dtype]
    result = torch.empty(out.shape, dtype=dtype, device=out.device)
    for top in range(0, out.shape[-2], BAND_ROWS):
        band = out[..., top : top + BAND_ROWS, :]
        scaled = band + 0.5 if peak == 255.0 else band.double() * (peak / 255.0) + 0.5
        result[..., top : top + BAND_ROWS, :] = torch.floor(scaled).clamp(0, peak)
    return result


def guard_sample_tiles(pixels: int, tiles: int) -> int:
    """How many of an image's tiles (of `pixels` in all) hold about GUARD_SAMPLE_PIXELS, at least one."""
    return max(1, math.ceil(GUARD_SAMPLE_PIXELS * tiles / pixels))


def spread_indices(count: int, chosen: int) -> list[int]:
    """`chosen` of range(count), evenly spread, first and last included (all of them when chosen >= count)."""
    if chosen >= count:
        return list(range(count))
    if chosen == 1:
        return [0]
    return [round(i * (count - 1) / (chosen - 1)) for i in range(chosen)]  # increasing: steps of at least 1


class _Tile:
    """One tile's spans, and, once denoised, its input and output over its core and the guard's halo."""

    def __init__(self, rows, cols):
        (self.y0, self.y1, self.cy0, self.cy1), (self.x0, self.x1, self.cx0, self.cx1) = rows, cols

    def region(self, halo: int) -> tuple[slice, slice]:
        """The core widened by `halo` within the window, in window coordinates."""
        top, left = max(self.y0, self.cy0 - halo), max(self.x0, self.cx0 - halo)
        bottom, right = min(self.y1, self.cy1 + halo), min(self.x1, self.cx1 + halo)
        return slice(top - self.y0, bottom - self.y0), slice(left - self.x0, right - self.x0)

    def in_image(self, rows: slice, cols: slice) -> tuple[slice, slice]:
        """A window region (`rows`, `cols`) in the image's coordinates."""
        return slice(self.y0 + rows.start, self.y0 + rows.stop), slice(self.x0 + cols.start, self.x0 + cols.stop)

    def core_within(self, rows: slice, cols: slice) -> tuple[slice, slice]:
        """The core, in the coordinates of a window region (`rows`, `cols`)."""
        top, left = self.y0 + rows.start, self.x0 + cols.start
        return (slice(self.cy0 - top, self.cy1 - top), slice(self.cx0 - left, self.cx1 - left))


def denoise_by_tiles(model: nn.Module, pixels: np.ndarray, options: InferenceOptions, guard_factor: float | None,
                     device: torch.device, noise_source: torch.Tensor, coarse_pass: bool = False,
                     stage_seconds: Counter | None = None, progress: bool | Callable[[int, int], None] = False) -> np.ndarray:
    """HxWxC (C = 1 or 3) array of any supported dtype -> the denoised array of the same dtype.

    `guard_factor`: the residual Wiener blend's noise factor (nn/wiener.py: GUARD_NOISE_FACTOR for a student's
    guard, 1 for the blend), or None for the network's output as it is. `coarse_pass`: the network also runs
    on the halved image first (coarse.py; the halved image is made a band of rows at a time). At
    `options.strength` (at most 1), with the preset the caller chose; a noise-aware network is told the noise
    of `noise_source` (measured_crop). `stage_seconds` adds the network's and the rest's seconds under
    "network" and "corrections"."""
    height, width, channels = pixels.shape
    grey = channels == 1 and model.arch_config.get("in_ch", 3) == 3
    dtype = torch.from_numpy(pixels[:1, :1]).dtype
    result = torch.empty((height, width, channels), dtype=dtype)
    rows, cols = plan_tiles(model, height, width, options.tile, options.overlap)
    tiles = [_Tile(r, c) for r in rows for c in cols]
    halo = 0 if guard_factor is None else DEFAULT_WINDOW // 2  # the guard's context
    seconds = stage_seconds if stage_seconds is not None else Counter()
    coarse = None
    if coarse_pass:
        start = time.perf_counter()
        coarse = denoise_tiled(model, halved(pixels, grey, device), options)
        seconds["network"] += time.perf_counter() - start
    report = progress if callable(progress) else None
    bar = tqdm(total=len(tiles), desc="tiles", unit="tile", disable=progress is not True, leave=False)
    denoised_tiles = 0  # not bar.n: a disabled bar does not count

    def denoise(tile: _Tile) -> tuple[torch.Tensor, torch.Tensor, tuple[slice, slice]]:
        """The tile's input and the network's output over its core and halo, (1, 3, h, w) on the 0..255 scale."""
        nonlocal denoised_tiles
        window = network_input(pixels[tile.y0 : tile.y1, tile.x0 : tile.x1], grey, device)
        start = time.perf_counter()
        out = denoise_window(model, window, (tile.y0, tile.x0), options)
        seconds["network"] += time.perf_counter() - start
        rows, cols = tile.region(halo)
        if coarse is not None:  # corrected over the region and the blur's context, then cut back to the region
            wide_rows, wide_cols = tile.region(halo + BLUR_RADIUS)
            wide = out[..., wide_rows, wide_cols]
            up = upsample(coarse, *tile.in_image(wide_rows, wide_cols))
            out[..., wide_rows, wide_cols] = chroma_from_coarse(wide, up)
        denoised_tiles += 1
        bar.update()
        if report is not None:
            report(denoised_tiles, len(tiles))
        return window[..., rows, cols], out[..., rows, cols], (rows, cols)

    def finish(tile: _Tile, noisy, denoised, region, noise_var=None, energy=None) -> None:
        """The tile's core guarded (given the noise variance), at the strength, into the result."""
        start = time.perf_counter()
        rows, cols = tile.core_within(*region)
        if noise_var is not None:
            energy = residual_energy(denoised, noisy)[..., rows, cols] if energy is None else energy
        noisy, denoised = noisy[..., rows, cols], denoised[..., rows, cols]
        out = denoised if noise_var is None else blend_by_energy(denoised, noisy, energy, noise_var)
        if options.strength != 1:
            out = torch.lerp(noisy, out, options.strength)
        out = rgb_to_grey(out, axis=-3) if grey else out
        result[tile.cy0 : tile.cy1, tile.cx0 : tile.cx1] = from_network_scale(out[0], dtype).permute(1, 2, 0).cpu()
        seconds["corrections"] += time.perf_counter() - start

    with bar, running(model, noise_source, options, device):
        noise_var, sampled = None, set()
        if guard_factor is not None:
            held, energies, activities = [], [], []
            for index in spread_indices(len(tiles), guard_sample_tiles(height * width, len(tiles))):
                tile = tiles[index]
                noisy, denoised, region = denoise(tile)
                rows, cols = tile.core_within(*region)
                energy = residual_energy(denoised, noisy)[..., rows, cols]
                held.append((tile, noisy, denoised, region, energy))
                energies.append(energy.flatten(1))
                activities.append(input_activity(noisy)[..., rows, cols].flatten(1))
                sampled.add(index)
            noise_var = guard_factor * flat_area_median(torch.cat(energies, 1), torch.cat(activities, 1))
            del energies, activities
            while held:
                tile, noisy, denoised, region, energy = held.pop(0)
                finish(tile, noisy, denoised, region, noise_var, energy)
        for index, tile in enumerate(tiles):
            if index not in sampled:
                finish(tile, *denoise(tile), noise_var)
    return result.numpy()


def measured_crop(pixels: np.ndarray, device: torch.device, channels: int) -> torch.Tensor:
    """(1, channels, h, w) on the 0..255 scale: the part of the image that lgbpn.noise measures (its central
    crop), grey replicated to `channels`."""
    rows, cols = measured_region(*pixels.shape[:2])
    return network_input(pixels[rows, cols], channels == 3, device)


def halved(pixels: np.ndarray, grey: bool, device: torch.device) -> torch.Tensor:
    """coarse.halve of the image on the 0..255 scale, (1, 3 or C, ceil(H/2), ceil(W/2)), made a band of rows at
    a time: no whole-image float copy."""
    rows = 2 * BAND_ROWS  # even: no 2 x 2 block straddles two bands
    return torch.cat([halve(network_input(pixels[top : top + rows], grey, device)) for top in range(0, pixels.shape[0], rows)],
                     dim=-2)


def network_input(part: np.ndarray, grey: bool, device: torch.device) -> torch.Tensor:
    """An h x w x C part of the image -> (1, C, h, w) on `device` on the 0..255 scale, grey replicated to RGB
    if `grey` (for an RGB network)."""
    x = to_network_scale(torch.from_numpy(np.ascontiguousarray(part)).permute(2, 0, 1)[None]).to(device)
    return grey_to_rgb(x, axis=-3) if grey else x
