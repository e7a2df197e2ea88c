"""The networks work on the 0..255 scale of 8-bit images (as the reference trains them)."""

import numpy as np

_MAX = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def to_model_scale(pixels: np.ndarray) -> np.ndarray:
    """uint8 as is, uint16 / 257, float (assumed 0..1) x 255 -> float32 on the 0..255 scale."""
    peak = _MAX.get(pixels.dtype, 1.0)
    return pixels.astype(np.float32) * np.float32(255.0 / peak)


def from_model_scale(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Back to `dtype`'s range; integers are rounded half up and clipped, floats are not rounded."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return (values / 255.0).astype(dtype)
    peak = _MAX[dtype]
    return np.clip(np.floor(values.astype(np.float64) * (peak / 255.0) + 0.5), 0, peak).astype(dtype)


def convert_depth(pixels: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """`pixels` in another dtype's range (uint8 0..255, uint16 0..65535, float 0..1), rounded and clipped
    as from_model_scale does."""
    return from_model_scale(to_model_scale(pixels), dtype)
