"""Reading and writing images without losing data.

Pixels come back as H x W x C arrays (C = 1 grey or 3 RGB) in the dtype they were stored in
(uint8, uint16 or float32), upright (EXIF/TIFF orientation applied), with any alpha channel
split off so the denoiser never sees it. Writes are atomic: a crash never leaves a half-written
output, and never clobbers an existing file with one.

Decisions a caller must know:

* TIFF integer samples other than uint8/uint16 (int16, uint32, ...) are read as uint16 when every
  value lies in 0..65535, and rejected otherwise; float16/float64 are read as float32.
* float32 pixels can only be written to TIFF: PNG and JPEG raise ImageWriteError rather than
  silently quantising.
* JPEG output is 8-bit at quality 95 with full-resolution chroma (4:4:4); uint16 is scaled to
  8 bit (round(v / 257)) and alpha is dropped with a warning.
* CMYK/YCbCr/LAB inputs are converted to RGB and their (non-RGB) ICC profile is dropped.
* BMP and WebP are read but not written: write them as .png or .tif.
* EXIF is carried to PNG and JPEG outputs (orientation reset to 1), not to TIFF; damaged EXIF
  is dropped with a warning instead of failing the read.
* Images over MAX_PIXELS (400 megapixels) are refused as possible decompression bombs.
* A 16-bit PNG's single transparent colour (tRNS) is ignored; 8-bit ones become alpha.
* TIFF compressions tifffile cannot decode without the optional ``imagecodecs`` package
  (LZW, JPEG, ...) fall back to Pillow when Pillow decodes them losslessly (8-bit or
  single-channel); otherwise the error suggests installing ``imagecodecs``.
"""

from __future__ import annotations

import os
import secrets
import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image as PILImage
from PIL import features

from lgbpn.errors import ImageReadError, ImageWriteError

MAX_PIXELS = 400_000_000
# Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that; our own check below
# rejects anything over MAX_PIXELS with a clear message.
PILImage.MAX_IMAGE_PIXELS = MAX_PIXELS

_WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}
WRITABLE_SUFFIXES = frozenset(_WRITE_FORMATS)
SUPPORTED_SUFFIXES = WRITABLE_SUFFIXES | {".bmp"} | ({".webp"} if features.check("webp") else set())

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


def _reason(error: BaseException) -> str:
    """One line saying why `error` happened: the OS's wording (the caller names the file), else its text."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return " ".join(text.split())


# ----------------------------------------------------------------------------------------- read


def read_image(path) -> Image:
    """Read a PNG, JPEG, TIFF, BMP or WebP file; raise ImageReadError when it cannot be read."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(32)
    except FileNotFoundError:
        raise ImageReadError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a folder, not an image file") from None
    except OSError as e:
        raise ImageReadError(f"{path}: cannot open ({_reason(e)})") from e
    if not head:
        raise ImageReadError(f"{path}: empty file (0 bytes)")
    image = _read_tiff(path, head) if head[:4] in _TIFF_MAGIC else _read_pillow(path, head)
    if image.pixels.dtype == np.float32 and not all(
            np.isfinite(a).all() for a in (image.pixels, image.alpha) if a is not None):
        raise ImageReadError(f"{path}: contains NaN/Inf values")
    return image


def _check_size(path: Path, height: int, width: int) -> None:
    if height <= 0 or width <= 0:
        raise ImageReadError(f"{path}: image has zero size ({width} x {height})")
    if height * width > MAX_PIXELS:
        raise ImageReadError(
            f"{path}: image too large ({width} x {height} pixels, limit {MAX_PIXELS // 10**6} megapixels)")


def _read_pillow(path: Path, head: bytes) -> Image:
    kind = "image"
    try:
        with PILImage.open(path, formats=_PIL_FORMATS) as im:
            kind = "JPEG" if im.format == "MPO" else im.format  # MPO: multi-picture JPEG from phones
            _check_size(path, im.height, im.width)
            if _is_png16_colour(head):
                pixels, alpha = _split_alpha(_read_png16_colour(path, head))
            else:
                im.load()
                pixels, alpha = _pillow_arrays(path, im)
            icc = None if im.mode in _NOT_RGB_SPACES else im.info.get("icc_profile")
            orientation, exif = _orientation_and_exif(path, im)
    except (ImageReadError, MemoryError):
        raise
    except PILImage.UnidentifiedImageError:
        raise ImageReadError(f"{path}: unsupported or unrecognised image format "
                             "(supported: PNG, JPEG, TIFF, BMP, WebP)") from None
    except PILImage.DecompressionBombError:
        raise ImageReadError(f"{path}: image too large (limit {MAX_PIXELS // 10**6} megapixels)") from None
    except Exception as e:  # decoders fed damaged files raise all kinds of exception types
        raise ImageReadError(f"{path}: corrupt or truncated {kind} file ({_reason(e)})") from e
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
        warnings.warn(f"{path}: damaged EXIF metadata dropped ({_reason(e)})", stacklevel=4)
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


def _is_png16_colour(head: bytes) -> bool:
    """16-bit RGB, RGBA or grey+alpha PNG, which Pillow would reduce to 8 bits."""
    return head.startswith(_PNG_MAGIC) and head[12:16] == b"IHDR" and head[24] == 16 and head[25] in (2, 4, 6)


def _read_png16_colour(path: Path, head: bytes) -> np.ndarray:
    width, height = struct.unpack(">II", head[16:24])
    colour_type, interlace = head[25], head[28]
    idat = _png_idat(path, path.read_bytes())
    # Pillow's PNG decoder (un-filtering, interlacing) is reused through its "zip" codec.
    if colour_type == 4:
        # Grey+alpha pixels are 4 bytes, which Pillow's 8-bit RGBA unpacker copies verbatim.
        raw = PILImage.frombytes("RGBA", (width, height), idat, "zip", "RGBA", interlace)
        return np.asarray(raw).view(">u2").astype(np.uint16)
    mode = "RGB" if colour_type == 2 else "RGBA"
    # Pillow keeps only the high byte of 16-bit colour; decoding as little-endian yields the low byte.
    high, low = (PILImage.frombytes(mode, (width, height), idat, "zip", f"{mode};16{order}", interlace)
                 for order in "BL")
    return np.asarray(high, dtype=np.uint16) << 8 | np.asarray(low, dtype=np.uint16)


def _png_idat(path: Path, data: bytes) -> bytes:
    parts, pos = [], len(_PNG_MAGIC)
    while pos + 8 <= len(data):
        length, chunk_type = struct.unpack_from(">I4s", data, pos)
        if chunk_type == b"IEND":
            return b"".join(parts)
        if chunk_type == b"IDAT":
            parts.append(data[pos + 8:pos + 8 + length])
        pos += 12 + length
    raise ImageReadError(f"{path}: truncated PNG (file ends before the IEND chunk)")


def _read_tiff(path: Path, head: bytes) -> Image:
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]  # multi-page files: the first page is the image
            _check_size(path, page.imagelength, page.imagewidth)
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
                    raise ImageReadError(f"{path}: unsupported TIFF ({kinds} {bits}-bit); "
                                         "installing the 'imagecodecs' package adds more TIFF codecs")
    except (ImageReadError, MemoryError):
        raise
    except Exception as e:  # decoders fed damaged files raise all kinds of exception types
        raise ImageReadError(f"{path}: corrupt or truncated TIFF file ({_reason(e)})") from e
    if not native:  # other colour models and codecs: Pillow decodes these losslessly
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


# ---------------------------------------------------------------------------------------- write


def write_image(path, image: Image) -> None:
    """Write `image` atomically in the format named by the suffix of `path`; see the module notes."""
    path = Path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
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
    if pixels.dtype == np.float32 and fmt != "TIFF":
        raise ImageWriteError(f"{path}: float32 pixels can only be written to .tif/.tiff, not {fmt}")
    if fmt == "JPEG" and alpha is not None:
        warnings.warn(f"{path}: JPEG cannot store alpha; the alpha channel is dropped", stacklevel=2)
        alpha = None
    arr = pixels if alpha is None else np.concatenate([pixels, alpha[..., None]], axis=2)
    with atomic_path(path) as tmp:
        if fmt == "TIFF":
            tifffile.imwrite(tmp, arr[..., 0] if arr.shape[2] == 1 else arr,
                             photometric="rgb" if arr.shape[2] >= 3 else "minisblack",
                             extrasamples=None if alpha is None else ["unassalpha"],
                             compression="zlib", iccprofile=image.icc_profile)
        elif fmt == "PNG" and arr.dtype == np.uint16:
            tmp.write_bytes(_encode_png16(arr, image.icc_profile, image.exif))
        else:
            if arr.dtype == np.uint16:  # JPEG is 8-bit: round(v / 257) in integer arithmetic
                arr = ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)
            options = {"quality": 95, "subsampling": 0} if fmt == "JPEG" else {}
            if image.exif:
                options["exif"] = image.exif
            if image.icc_profile:
                options["icc_profile"] = image.icc_profile
            PILImage.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).save(tmp, fmt, **options)


def _encode_png16(arr: np.ndarray, icc: bytes | None, exif: bytes | None) -> bytes:
    """Encode H x W x C uint16 (C = 1..4) as a 16-bit PNG; Pillow cannot write 16-bit colour."""
    height, width, channels = arr.shape
    rows = np.ascontiguousarray(arr, dtype=">u2").view(np.uint8).reshape(height, -1)  # any memory layout
    bpp = 2 * channels
    filtered = rows.copy()
    filtered[:, bpp:] -= rows[:, :-bpp]  # PNG "Sub" filter: much smaller files than no filter
    scanlines = np.hstack([np.ones((height, 1), np.uint8), filtered]).tobytes()  # 1 = Sub
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    chunks = [(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0))]
    if icc:
        chunks.append((b"iCCP", b"ICC profile\0\0" + zlib.compress(icc)))
    if exif:
        chunks.append((b"eXIf", exif.removeprefix(b"Exif\0\0")))
    chunks += [(b"IDAT", zlib.compress(scanlines, 6)), (b"IEND", b"")]
    return _PNG_MAGIC + b"".join(
        struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        for kind, body in chunks)


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; when the block succeeds, fsync it and move it onto `path`.

    The parent folder is created if missing. On an exception the temporary file is removed and
    `path` is untouched. OSErrors (permission denied, disk full, parent is a file) become
    ImageWriteError naming `path`.
    """
    path = Path(path)
    # Hidden, and ending in .tmp, so find_images never mistakes it for an input image.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # mkdir's own wording ("File exists") misleads
        blocker = next((p for p in reversed(path.parents) if p.exists() and not p.is_dir()), path.parent)
        raise ImageWriteError(f"{path}: cannot write ({blocker} is a file, not a folder)") from None
    except OSError as e:
        raise ImageWriteError(f"{path}: cannot write ({_reason(e)})") from e
    try:
        # O_EXCL: never reuse someone else's file; mode 0o666 lets the umask decide, like a normal create.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as e:
        raise ImageWriteError(f"{path}: cannot write ({_reason(e)})") from e
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        raise ImageWriteError(f"{path}: cannot write ({_reason(e)})") from e
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path, data: bytes) -> None:
    """Write `data` to `path` atomically (see atomic_path)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


# ----------------------------------------------------------------------------------------- find


def find_images(inputs: list[Path]) -> list[tuple[Path, Path]]:
    """Expand inputs into (image file, name relative to its input) pairs.

    A file is taken as is (whatever its suffix: read_image judges it) and named by its file name.
    A folder is searched recursively for files with a supported suffix (any case), sorted;
    hidden files and folders (name starting with ".", including our temporary files) are skipped.
    A missing input raises ImageReadError.
    """
    pairs = []
    for root in map(Path, inputs):
        if root.is_file():
            pairs.append((root, Path(root.name)))
        elif root.is_dir():
            found = []
            for folder, subfolders, names in os.walk(root):
                subfolders[:] = [name for name in subfolders if not name.startswith(".")]
                found += [Path(folder, name) for name in names
                          if not name.startswith(".") and Path(name).suffix.lower() in SUPPORTED_SUFFIXES]
            pairs += [(file, file.relative_to(root)) for file in sorted(found)]
        else:
            raise ImageReadError(f"{root}: no such file or folder")
    return pairs
