"""The EXIF fields a photo keeps in a TIFF output, and the EXIF block made for a camera raw file.

PNG and JPEG outputs embed the whole EXIF block. A TIFF output carries the fields below as tags of
its own directory: tifffile writes no EXIF sub-directory, and EXIF tags in the main directory are
what DNG files hold too (exiftool and Pillow read them there).
"""

from fractions import Fraction

from PIL import Image as PILImage
from PIL.ExifTags import IFD, Base
from PIL.TiffImagePlugin import IFDRational

# Tag -> its TIFF type as tifffile names it: "s" text, "H" short, "2I" rational, "2i" signed rational.
MAIN_FIELDS = {Base.Make: "s", Base.Model: "s", Base.Orientation: "H", Base.DateTime: "s", Base.Artist: "s",
               Base.Copyright: "s"}
EXIF_FIELDS = {Base.ExposureTime: "2I", Base.FNumber: "2I", Base.ExposureProgram: "H", Base.ISOSpeedRatings: "H",
               Base.DateTimeOriginal: "s", Base.DateTimeDigitized: "s", Base.ExposureBiasValue: "2i",
               Base.MeteringMode: "H", Base.Flash: "H", Base.FocalLength: "2I", Base.FocalLengthIn35mmFilm: "H",
               Base.BodySerialNumber: "s", Base.LensMake: "s", Base.LensModel: "s"}
FIELDS = MAIN_FIELDS | EXIF_FIELDS


def make_exif(fields: dict) -> bytes:
    """An EXIF block of `fields` (tag -> str, int, a tuple of ints, or a number for a rational), orientation 1:
    the pixels it goes with are upright."""
    exif = PILImage.Exif()
    sub = {}
    for tag, value in fields.items():
        if FIELDS[tag] in ("2I", "2i") and not isinstance(value, IFDRational):
            fraction = Fraction(value).limit_denominator(100_000)  # LibRaw gives floats: 1/250 s, f/2.8
            value = IFDRational(fraction.numerator, fraction.denominator)
        (exif if tag in MAIN_FIELDS else sub)[tag] = value
    exif[Base.Orientation] = 1
    if sub:
        exif[IFD.Exif] = sub
    return exif.tobytes()


def tiff_tags(exif: bytes) -> list[tuple]:
    """tifffile `extratags` for the FIELDS found in an EXIF block; a value of the wrong type is left out."""
    loaded = PILImage.Exif()
    loaded.load(exif)
    found = {**loaded, **loaded.get_ifd(IFD.Exif)}
    tags = []
    for tag, kind in FIELDS.items():
        value = _tiff_value(kind, found.get(tag))
        if value is not None:
            count = 0 if kind == "s" else len(value) // len(kind)  # a rational is two numbers: "2I"
            tags.append((tag, kind, count, value, True))
    return tags


def _tiff_value(kind: str, value):
    if kind == "s":
        return (value.strip("\0 ") or None) if isinstance(value, str) else None
    values = value if isinstance(value, tuple) else (value,)
    if kind == "H":
        return values if all(isinstance(v, int) and 0 <= v < 2**16 for v in values) else None
    if not all(isinstance(v, IFDRational) for v in values):
        return None
    flat = tuple(n for v in values for n in (v.numerator, v.denominator))
    low, high = (0, 2**32) if kind == "2I" else (-(2**31), 2**31)
    return flat if all(isinstance(n, int) and low <= n < high for n in flat) else None
