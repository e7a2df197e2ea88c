"""The in-memory image that reading returns and writing takes, and the file formats of each."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import features

from ..errors import ImageReadError

# Suffix -> Pillow's name of the format written; every one of them is read, and BMP and WebP too.
WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}
WRITABLE_SUFFIXES = frozenset(WRITE_FORMATS)
# Camera raw files, read (developed) through LibRaw, never written.
RAW_SUFFIXES = frozenset({".dng", ".nef", ".cr2", ".cr3", ".arw", ".raf", ".orf", ".rw2"})
SUPPORTED_SUFFIXES = WRITABLE_SUFFIXES | RAW_SUFFIXES | {".bmp"} | ({".webp"} if features.check("webp") else set())

MAX_PIXELS = 400_000_000


def check_size(path: Path, height: int, width: int) -> None:
    """Refuse an empty image, or one over MAX_PIXELS (a possible decompression bomb), before decoding it."""
    if height <= 0 or width <= 0:
        raise ImageReadError(f"{path}: image has zero size ({width} x {height})")
    if height * width > MAX_PIXELS:
        raise ImageReadError(
            f"{path}: image too large ({width} x {height} pixels, limit {MAX_PIXELS // 10**6} megapixels)")


@dataclass
class Image:
    """An image as read from disk, or to be written.

    pixels: H x W x C (C = 1 grey, 3 RGB), uint8, uint16 or float32, writable and upright.
    alpha: H x W, same dtype as pixels, passed through untouched; None when there is none.
    exif: EXIF to write back, orientation already reset to 1; icc_profile: ICC profile to write back.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None
    source: Path | None
    format: str
    exif: bytes | None = None
    icc_profile: bytes | None = None
