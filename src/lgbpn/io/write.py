"""Writing an Image in the format its file suffix names (see the package notes)."""

import logging
import struct
import warnings
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
from PIL import Image as PILImage

from ..errors import ImageWriteError
from ..scale import convert_depth
from .atomic import atomic_path
from .exif import tiff_tags
from .image import WRITE_FORMATS, Image

log = logging.getLogger(__name__)

_PNG_HEADER_END = 8 + 25  # signature, then the IHDR chunk, which every PNG starts with
_DEEPEST = {"JPEG": np.dtype(np.uint8), "PNG": np.dtype(np.uint16)}  # TIFF takes all three dtypes
# zlib level of PNG outputs. Measured on a denoised 12 MP photo (Pillow, zlib 1.2.13): level 1 took 1.3 s for
# 15.2 MB, Pillow's default 6 took 6.3 s for 13.2 MB, 9 took 50 s for 12.7 MB, 0 (stored) 0.6 s for 36 MB.
# Level 1 is also OpenCV's imwrite default. `--png-compression` trades time for smaller files.
DEFAULT_PNG_COMPRESSION = 1
# PNG outputs are written by libpng (imagecodecs). At the fast levels with one fixed row filter, Average: on a
# denoised 12 MP photo (AMD EPYC, level 1) 0.27 s and 6.31 MB, against libpng's per-row choice 0.56 s and 6.30
# MB and Pillow's 0.65 s and 6.42 MB (Sub 0.24 s 6.45 MB, Up 0.24 s 6.49 MB, None 0.25 s 7.40 MB). Slower
# levels are asked for smaller files: there libpng chooses per row.
_FIXED_FILTER_LEVELS = range(0, 3)


def write_image(path, image: Image, png_compression: int = DEFAULT_PNG_COMPRESSION) -> None:
    """Write `image` atomically in the format named by the suffix of `path`; see the package notes.

    `png_compression`: the zlib level (0-9) of a PNG; any level is lossless, higher ones are smaller and slower."""
    path = Path(path)
    if not (isinstance(png_compression, int) and 0 <= png_compression <= 9):
        raise ImageWriteError(f"{path}: PNG compression must be an integer 0-9, got {png_compression!r}")
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageWriteError(
            f"{path}: cannot write '{path.suffix}' files (use .png, .jpg, .jpeg, .tif or .tiff)")
    pixels, alpha = image.pixels, image.alpha
    if (pixels.ndim != 3 or pixels.shape[2] not in (1, 3) or 0 in pixels.shape
            or pixels.dtype not in (np.uint8, np.uint16, np.float32)):
        raise ImageWriteError(f"{path}: pixels must be H x W x 1 or 3 of uint8, uint16 or float32, "
                              f"got {pixels.shape} {pixels.dtype}")
    if alpha is not None and (alpha.shape != pixels.shape[:2] or alpha.dtype != pixels.dtype):
        raise ImageWriteError(f"{path}: alpha {alpha.shape} {alpha.dtype} does not match "
                              f"pixels {pixels.shape} {pixels.dtype}")
    if fmt == "JPEG" and alpha is not None:
        warnings.warn(f"{path}: JPEG cannot store alpha; the alpha channel is dropped", stacklevel=2)
        alpha = None
    arr = pixels if alpha is None else np.concatenate([pixels, alpha[..., None]], axis=2)
    # The format follows the suffix: JPEG holds 8-bit integers, PNG up to 16 (uint16 to JPEG: round(v / 257)).
    deepest = _DEEPEST.get(fmt)
    if deepest is not None and (arr.dtype.kind == "f" or arr.dtype.itemsize > deepest.itemsize):
        if arr.dtype.kind == "f":
            log.warning("%s: %s stores integers: float32 pixels saved as %d-bit (0..1 scaled to 0..%d, "
                        "values outside clipped); write .tif to keep them", path, fmt, deepest.itemsize * 8,
                        np.iinfo(deepest).max)
        arr = convert_depth(arr, deepest)
    with atomic_path(path, ImageWriteError) as tmp:
        if fmt == "TIFF":
            import tifffile  # here, not at the top: it takes 0.1-0.4 s to import, and most outputs are not TIFF

            tifffile.imwrite(tmp, arr[..., 0] if arr.shape[2] == 1 else arr,
                             photometric="rgb" if arr.shape[2] >= 3 else "minisblack",
                             extrasamples=None if alpha is None else ["unassalpha"],
                             compression="zlib", iccprofile=image.icc_profile,
                             extratags=tiff_tags(image.exif) if image.exif else None)
        elif fmt == "PNG":
            tmp.write_bytes(_png(arr, image.icc_profile, image.exif, png_compression))
        else:
            options = {"quality": 95, "subsampling": 0}
            if image.exif:
                options["exif"] = image.exif
            if image.icc_profile:
                options["icc_profile"] = image.icc_profile
            PILImage.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).save(tmp, fmt, **options)


def _png(arr: np.ndarray, icc: bytes | None, exif: bytes | None, level: int) -> bytes:
    """H x W x C uint8 or uint16 (C = 1..4) as a PNG, with the ICC profile and EXIF imagecodecs does not write."""
    # Grey as H x W. imagecodecs refuses the odd strides numpy allows on length-1 axes, even when contiguous:
    # those get a fresh copy (a full-size photo needs none).
    arr = arr[..., 0] if arr.shape[2] == 1 else arr
    if 1 in arr.shape or not arr.flags.c_contiguous:
        arr = arr.copy()
    row_filter = imagecodecs.PNG.FILTER.AVG if level in _FIXED_FILTER_LEVELS else None
    data = imagecodecs.png_encode(arr, level=level, filter=row_filter)
    chunks = []
    if icc:
        chunks.append((b"iCCP", b"ICC profile\0\0" + zlib.compress(icc)))
    if exif:
        chunks.append((b"eXIf", exif.removeprefix(b"Exif\0\0")))
    return data[:_PNG_HEADER_END] + b"".join(
        struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        for kind, body in chunks) + data[_PNG_HEADER_END:]
