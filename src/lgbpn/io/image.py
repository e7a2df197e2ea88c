"""The in-memory image that reading returns and writing takes, and the file formats of each."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import features

# Suffix -> Pillow's name of the format written; every one of them is read, and BMP and WebP too.
WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}
WRITABLE_SUFFIXES = frozenset(WRITE_FORMATS)
SUPPORTED_SUFFIXES = WRITABLE_SUFFIXES | {".bmp"} | ({".webp"} if features.check("webp") else set())


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
