"""Reading PNG, JPEG, TIFF, BMP, WebP and camera raw files into an Image (see the package notes)."""

import warnings
from pathlib import Path

import imagecodecs
import numpy as np
from PIL import Image as PILImage

from ..errors import ImageReadError, one_line
from .image import MAX_PIXELS, RAW_SUFFIXES, Image, check_size
from .raw import read_raw

# Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that; our own check below
# rejects anything over MAX_PIXELS with a clear message.
PILImage.MAX_IMAGE_PIXELS = MAX_PIXELS

# TIFF is only reached as a fallback (see _read_tiff).
_PIL_FORMATS = ("PNG", "JPEG", "BMP", "WEBP", "TIFF")
_TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

_ORIENTATION = 0x0112
# Maps an EXIF/TIFF orientation to the operation that makes an (H, W, ...) array upright.
_UPRIGHT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}
# Pillow mode -> mode whose numpy array we hand out; the trailing "A" marks an alpha channel.
_PIL_TARGET = {"1": "L", "L": "L", "LA": "LA", "La": "LA", "P": "RGB", "PA": "RGBA", "RGB": "RGB",
               "RGBA": "RGBA", "RGBa": "RGBA", "RGBX": "RGB", "CMYK": "RGB", "YCbCr": "RGB",
               "LAB": "RGB", "HSV": "RGB"}
_NOT_RGB_SPACES = ("CMYK", "YCbCr", "LAB", "HSV")


def read_image(path) -> Image:
    """Read a PNG, JPEG, TIFF, BMP, WebP or camera raw file; raise ImageReadError when it cannot be read."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(32)
    except FileNotFoundError:
        raise ImageReadError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a folder, not an image file") from None
    except OSError as e:
        raise ImageReadError(f"{path}: cannot open ({one_line(e)})") from e
    if not head:
        raise ImageReadError(f"{path}: empty file (0 bytes)")
    if path.suffix.lower() in RAW_SUFFIXES:  # most are TIFF inside, but a mosaic to develop
        return read_raw(path, head)
    image = _read_tiff(path, head) if head[:4] in _TIFF_MAGIC else _read_pillow(path, head)
    if image.pixels.dtype == np.float32 and not all(
            np.isfinite(a).all() for a in (image.pixels, image.alpha) if a is not None):
        raise ImageReadError(f"{path}: contains NaN/Inf values")
    return image


def _read_pillow(path: Path, head: bytes) -> Image:
    kind = "image"
    try:
        with PILImage.open(path, formats=_PIL_FORMATS) as im:
            kind = "JPEG" if im.format == "MPO" else im.format  # MPO: multi-picture JPEG from phones
            check_size(path, im.height, im.width)  # before decoding: a decompression bomb stops here
            if _libpng_decodes(head):
                pixels, alpha = _split_alpha(_decode_png(path))
            else:
                im.load()
                pixels, alpha = _pillow_arrays(path, im)
            icc = None if im.mode in _NOT_RGB_SPACES else im.info.get("icc_profile")
            orientation, exif = _orientation_and_exif(path, im)
    except (ImageReadError, MemoryError):
        raise
    except PILImage.UnidentifiedImageError:
        raise ImageReadError(f"{path}: unsupported or unrecognised image format "
                             "(supported: PNG, JPEG, TIFF, BMP, WebP, camera raw)") from None
    except PILImage.DecompressionBombError:
        raise ImageReadError(f"{path}: image too large (limit {MAX_PIXELS // 10**6} megapixels)") from None
    except Exception as e:  # decoders fed damaged files raise all kinds of exception types
        raise ImageReadError(f"{path}: corrupt or truncated {kind} file ({one_line(e)})") from e
    pixels, alpha = _upright(orientation, pixels, alpha)
    return Image(pixels, alpha, path, kind, exif, icc or None)


def _orientation_and_exif(path: Path, im: PILImage.Image) -> tuple[int, bytes | None]:
    """The EXIF orientation, and the EXIF to write back with orientation reset to 1 (we apply it)."""
    orientation = 1
    try:
        exif = im.getexif()
        orientation = exif.get(_ORIENTATION, 1)
        if _ORIENTATION in exif:
            exif[_ORIENTATION] = 1
        # A TIFF's "EXIF" is its whole tag directory, not something to embed in another file.
        return orientation, exif.tobytes() if exif and im.format != "TIFF" else None
    except Exception as e:  # Pillow's EXIF code raises all kinds of types on damaged data
        warnings.warn(f"{path}: damaged EXIF metadata dropped ({one_line(e)})", stacklevel=4)
        return orientation, None


def _pillow_arrays(path: Path, im: PILImage.Image) -> tuple[np.ndarray, np.ndarray | None]:
    target = _PIL_TARGET.get(im.mode)
    if target is None:  # 16/32-bit integer and float grey modes ("I;16", "I", "F", ...)
        return _normalise_dtype(path, np.array(im))[..., None], None
    if "transparency" in im.info and not target.endswith("A"):
        target += "A"  # a transparent colour or palette entry becomes a real alpha channel
    arr = np.array(im if im.mode == target else im.convert(target))  # np.asarray would be read-only
    return _split_alpha(arr) if target.endswith("A") else (arr.reshape(*arr.shape[:2], -1), None)


def _split_alpha(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Split an H x W x (1..4) array into pixels and alpha (present for 2 and 4 channels)."""
    if arr.shape[2] in (2, 4):
        return np.ascontiguousarray(arr[..., :-1]), np.ascontiguousarray(arr[..., -1])
    return arr, None


def _upright(orientation, pixels: np.ndarray, alpha: np.ndarray | None):
    op = _UPRIGHT.get(orientation) if isinstance(orientation, int) else None  # damaged EXIF: any type
    if op is None:
        return pixels, alpha
    return np.ascontiguousarray(op(pixels)), None if alpha is None else np.ascontiguousarray(op(alpha))


def _normalise_dtype(path: Path, arr: np.ndarray) -> np.ndarray:
    kind, size = arr.dtype.kind, arr.dtype.itemsize
    if kind == "b":
        return arr.astype(np.uint8) * 255
    if kind == "u" and size <= 2:
        return arr.astype(f"=u{size}", copy=False)
    if kind == "f":
        return arr.astype(np.float32, copy=False)
    if kind in "iu" and arr.min() >= 0 and arr.max() <= 65535:
        return arr.astype(np.uint16)
    raise ImageReadError(f"{path}: unsupported sample type {arr.dtype} "
                         "(supported: uint8, uint16, float, integers within 0..65535)")


def _libpng_decodes(head: bytes) -> bool:
    """A PNG of 16 bits (Pillow would reduce its colour to 8 bits and ignore its transparent colour) or of 8 bits
    without a palette: libpng decodes it in a call that releases the GIL, 2.4x faster than Pillow (a 12 MP RGB photo:
    0.085 s against 0.2, and no copy after it). Palettes and 1-4 bit grey stay with Pillow."""
    if not (head.startswith(_PNG_MAGIC) and head[12:16] == b"IHDR"):
        return False
    depth, colour_type = head[24], head[25]
    return depth == 16 or (depth == 8 and colour_type in (0, 2, 4, 6))  # grey, RGB, grey + alpha, RGBA


def _decode_png(path: Path) -> np.ndarray:
    arr = imagecodecs.png_decode(path.read_bytes())  # a tRNS colour comes back as an alpha channel
    return arr.reshape(*arr.shape[:2], -1)  # grey comes back H x W


def _read_tiff(path: Path, head: bytes) -> Image:
    import tifffile  # here, not at the top: it takes 0.1-0.4 s to import, and most photos are not TIFF

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]  # multi-page files: the first page is the image
            check_size(path, page.imagelength, page.imagewidth)
            if any(offset + count > tif.filehandle.size
                   for offset, count in zip(page.dataoffsets, page.databytecounts)):
                raise ImageReadError(f"{path}: truncated TIFF (image data runs past the end of the file)")
            native = (page.photometric in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB)
                      and page.compression in tifffile.TIFF.DECOMPRESSORS
                      and page.predictor in tifffile.TIFF.UNPREDICTORS)
            if native:
                arr, axes = page.asarray(), page.axes
                orientation, icc = page.tags.valueof(274, 1), page.tags.valueof(34675)
            else:
                bits = np.max(page.bitspersample)  # a tuple when samples differ in depth
                if bits > 8 and page.samplesperpixel > 1:  # Pillow would reduce it to 8 bits
                    # getattr: damaged files hold numbers outside tifffile's enums
                    kinds = " ".join(str(getattr(v, "name", v)) for v in (page.photometric, page.compression))
                    raise ImageReadError(f"{path}: unsupported TIFF ({kinds} {bits}-bit)")
    except (ImageReadError, MemoryError):
        raise
    except Exception as e:  # decoders fed damaged files raise all kinds of exception types
        raise ImageReadError(f"{path}: corrupt or truncated TIFF file ({one_line(e)})") from e
    if not native:  # other colour models: Pillow decodes these losslessly
        return _read_pillow(path, head)
    if axes == "SYX":  # planar configuration: one plane per channel
        arr = np.moveaxis(arr, 0, -1)
    elif axes == "YX":
        arr = arr[..., None]
    if axes not in ("SYX", "YX", "YXS") or arr.ndim != 3 or arr.shape[2] > 4:
        raise ImageReadError(
            f"{path}: unsupported TIFF layout (axes {axes}, shape {arr.shape}; 1 to 4 channels are supported)")
    pixels, alpha = _split_alpha(_normalise_dtype(path, arr))
    pixels, alpha = _upright(orientation, pixels, alpha)
    return Image(pixels, alpha, path, "TIFF", None, bytes(icc) if icc else None)
