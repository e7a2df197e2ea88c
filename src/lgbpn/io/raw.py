"""Developing camera raw files (DNG, NEF, CR2, CR3, ARW, RAF, ORF, RW2) through LibRaw (rawpy).

Developed as the camera shot it: its as-shot white balance, its colour matrix to sRGB, the sRGB tone
curve, no automatic brightening, upright; 16 bits per channel. The EXIF kept (see exif.py) comes
from the file's own EXIF where exifread parses it (the TIFF-structured ones: DNG, NEF, CR2, ARW,
ORF, RW2), and from what LibRaw reads (exposure, ISO, aperture, focal length, date, lens) for the
fields it lacks: for RAF and CR3 that is all there is, without camera make and model.
"""

import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from PIL.ExifTags import Base

from ..errors import ImageReadError, one_line
from .exif import FIELDS, make_exif
from .image import Image, check_size

SRGB_GAMMA = (2.4, 12.92)  # LibRaw's (power, toe slope); its default is BT.709's curve
_STDERR_SWAP = threading.Lock()


def read_raw(path: Path, head: bytes) -> Image:
    """Develop a camera raw file into 16-bit sRGB; ImageReadError naming the file when LibRaw cannot read it."""
    import rawpy  # loads LibRaw: only when a raw file is read

    kind = path.suffix.lstrip(".").upper()
    said: list[str] = []
    try:
        with _libraw_says(said), rawpy.imread(str(path)) as raw:
            check_size(path, raw.sizes.height, raw.sizes.width)  # before developing it
            pixels = raw.postprocess(use_camera_wb=True, output_color=rawpy.ColorSpace.sRGB, output_bps=16,
                                     no_auto_bright=True, gamma=SRGB_GAMMA)
            exif = _exif(path, head, raw)
    except (ImageReadError, MemoryError):
        raise
    except Exception as e:  # LibRaw's error types, and whatever a damaged file sets off
        # rawpy hands LibRaw's messages on as bytes; what LibRaw printed says more ("Unexpected end of file").
        why = "; ".join(line.removeprefix(f"{path}: ") for line in said) or one_line(
            e.args[0].decode(errors="replace") if e.args and isinstance(e.args[0], bytes) else e)
        raise ImageReadError(f"{path}: LibRaw cannot read this {kind} camera raw file, damaged or unsupported ({why})") from e
    return Image(pixels, None, path, kind, exif)


def _exif(path: Path, head: bytes, raw) -> bytes | None:
    """The EXIF block to write back: the file's own fields where exifread finds them, else LibRaw's."""
    try:
        return make_exif(libraw_fields(raw) | _file_exif(path, head))
    except Exception as e:  # LibRaw's dates, exifread and Pillow raise all kinds of types on damaged data
        warnings.warn(f"{path}: damaged EXIF metadata dropped ({one_line(e)})", stacklevel=4)
        return None


@contextmanager
def _libraw_says(said: list[str]) -> Iterator[None]:
    """Catch what LibRaw prints on the process's stderr (a damaged file's complaints) into `said` while it
    reads a file, for the file's one-line error: the user sees one line per bad file, not LibRaw's too.
    Text that another thread wrote meanwhile is written back when the file reads well. One file at a time:
    two threads swapping the process's stderr would lose it."""
    with _STDERR_SWAP:
        if sys.stderr is not None:
            sys.stderr.flush()
        try:
            real = os.dup(2)
        except OSError:  # no stderr at all (a daemon): nothing to catch
            yield
            return
        with tempfile.TemporaryFile() as catcher:
            os.dup2(catcher.fileno(), 2)
            failed = True
            try:
                yield
                failed = False
            finally:
                os.dup2(real, 2)
                os.close(real)
                catcher.seek(0)
                text = catcher.read()
                if failed:
                    said += [line for line in text.decode(errors="replace").splitlines() if line.strip()]
                elif text:
                    os.write(2, text)


def libraw_fields(raw) -> dict:
    """EXIF fields (tag -> value) from what LibRaw read of the file; those it did not find are left out."""
    other, lens = raw.other, raw.lens
    fields = {Base.ExposureTime: other.shutter_speed, Base.FNumber: other.aperture, Base.FocalLength: other.focal_length,
              Base.ISOSpeedRatings: round(other.iso_speed), Base.Artist: other.artist.strip(),
              Base.LensMake: lens.make.strip(), Base.LensModel: lens.model.strip()}
    if other.timestamp != datetime.fromtimestamp(0):
        fields[Base.DateTimeOriginal] = other.timestamp.strftime("%Y:%m:%d %H:%M:%S")
    return {tag: value for tag, value in fields.items() if value}  # LibRaw leaves what it lacks 0 or empty


def _file_exif(path: Path, head: bytes) -> dict:
    """The FIELDS in the file's own EXIF, for the TIFF-structured raw files exifread parses."""
    if head[:2] not in (b"II", b"MM"):  # RAF, CR3: exifread does not parse them
        return {}
    import exifread

    with open(path, "rb") as f:
        tags = exifread.process_file(f, details=False, extract_thumbnail=False)
    # "Image": the main directory; "EXIF": its EXIF sub-directory (not the thumbnail's, nor maker notes).
    return {tag.tag: _value(FIELDS[tag.tag], tag.values) for key, tag in tags.items()
            if key.split(" ", 1)[0] in ("Image", "EXIF") and tag.tag in FIELDS and len(tag.values)}


def _value(kind: str, values):
    """An exifread tag's values as make_exif takes them: text, a number (one rational), or ints."""
    if kind == "s":
        return str(values).strip("\0 ")
    if kind == "H" and len(values) > 1:
        return tuple(values)
    return values[0]
