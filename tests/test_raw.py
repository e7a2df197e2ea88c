"""Camera raw files: DNGs made here (an RGGB mosaic of known colour patches with the DNG tags a camera
writes), developed through rawpy (LibRaw) by read_image and by `lgbpn denoise`."""

import struct

import numpy as np
import pytest
import rawpy
import tifffile
from PIL import Image as PILImage
from PIL.ExifTags import IFD, Base

from lgbpn.errors import ImageReadError
from lgbpn.io import image_files, read_image, write_image
from lgbpn.io.raw import libraw_fields

from .helpers import run_cli

HEIGHT, WIDTH, PATCH_H, PATCH_W = 96, 128, 48, 32
# sRGB colours of the 2 x 4 patches: greys, then saturated colours.
COLOURS = np.array([[0.2, 0.2, 0.2], [0.5, 0.5, 0.5], [0.8, 0.8, 0.8], [0.7, 0.2, 0.2],
                    [0.2, 0.6, 0.2], [0.2, 0.3, 0.7], [0.8, 0.7, 0.2], [0.3, 0.6, 0.7]])
# The camera's response to the shot's white (its AsShotNeutral), and to daylight (D65, as its colour matrix
# says): the shot's white balance is not daylight's, so only the as-shot one gives greys back.
NEUTRAL, DAYLIGHT = np.array([0.5, 1.0, 0.7]), np.array([0.6, 1.0, 0.55])
BLACK, WHITE = 256, 4095  # a 12-bit sensor
XYZ_TO_LINEAR_SRGB = np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]])
# TIFF/EXIF orientation -> what makes the stored scene upright.
UPRIGHT = {1: lambda a: a, 3: lambda a: a[::-1, ::-1], 6: lambda a: np.rot90(a, -1), 8: lambda a: np.rot90(a, 1)}


def scene() -> np.ndarray:
    """H x W x 3 sRGB in 0..1: 2 rows of 4 flat patches."""
    return COLOURS.reshape(2, 4, 3).repeat(PATCH_H, 0).repeat(PATCH_W, 1)


def rationals(values, denominator=10_000) -> list[int]:
    return [n for v in values for n in (round(v * denominator), denominator)]


def write_dng(path, orientation: int = 1, with_exif: bool = True):
    """A DNG of scene() as a camera with sRGB primaries records it under the shot's light (each channel scaled by
    NEUTRAL): RGGB mosaic, black and white levels, ColorMatrix1 (XYZ to camera under D65), AsShotNeutral, make
    and model in the main directory, exposure in an EXIF sub-directory at the end of the file (if `with_exif`)."""
    linear = np.where(scene() <= 0.04045, scene() / 12.92, ((scene() + 0.055) / 1.055) ** 2.4) * NEUTRAL
    channel = np.array([[0, 1], [1, 2]])[np.arange(HEIGHT)[:, None] % 2, np.arange(WIDTH) % 2]  # RGGB
    mosaic = np.take_along_axis(linear, channel[..., None], axis=2)[..., 0]
    cfa = np.round(BLACK + mosaic * (WHITE - BLACK)).astype(np.uint16)
    tags = [
        (50706, "B", 4, (1, 4, 0, 0)), (50707, "B", 4, (1, 1, 0, 0)),  # DNGVersion, DNGBackwardVersion
        (271, "s", 0, "Lgbpn"), (272, "s", 0, "TestCam 1"), (50708, "s", 0, "Lgbpn TestCam 1"),  # UniqueCameraModel
        (274, "H", 1, orientation),
        (33421, "H", 2, (2, 2)), (33422, "B", 4, (0, 1, 1, 2)),  # CFARepeatPatternDim, CFAPattern RGGB
        (50710, "B", 3, (0, 1, 2)), (50711, "H", 1, 1),  # CFAPlaneColor, CFALayout
        (50714, "I", 1, BLACK), (50717, "I", 1, WHITE),  # BlackLevel, WhiteLevel
        (50721, "2i", 9, rationals((np.diag(DAYLIGHT) @ XYZ_TO_LINEAR_SRGB).ravel())),  # ColorMatrix1
        (50778, "H", 1, 21),  # CalibrationIlluminant1: D65
        (50728, "2I", 3, rationals(NEUTRAL)),  # AsShotNeutral
        (306, "s", 0, "2024:05:06 07:08:09"),  # DateTime
        (34666, "I", 1, 0),  # becomes ExifIFD (34665, which tifffile does not write), the sub-directory's offset
    ]
    tifffile.imwrite(path, cfa, photometric=32803, subfiletype=0,
                     extratags=[(*t, True) for t in (tags if with_exif else tags[:-1])])
    if not with_exif:
        return path
    with tifffile.TiffFile(path) as tif:
        entry = tif.pages[0].tags[34666].offset
    with open(path, "r+b") as f:
        end = f.seek(0, 2)
        f.write(exif_directory(end))
        f.seek(entry)
        f.write(struct.pack("<HHII", 34665, 4, 1, end))  # tag, LONG, count, value
    return path


def exif_directory(start: int) -> bytes:
    """A little-endian EXIF sub-directory, as a camera writes one, to lie at file offset `start`: exposure
    1/250 s, f/2.8, program, ISO 800, date taken, 50 mm."""
    # ExposureTime, FNumber, ExposureProgram (2: normal; LibRaw does not give it), ISOSpeedRatings,
    # DateTimeOriginal, FocalLength
    entries = [(33434, 5, (1, 250)), (33437, 5, (28, 10)), (34850, 3, 2), (34855, 3, 800),
               (36867, 2, b"2024:05:06 07:08:09\0"), (37386, 5, (50, 1))]
    data_at = start + 2 + 12 * len(entries) + 4
    table, data = b"", b""
    for tag, kind, value in entries:
        if kind == 3:  # a short fits in the entry
            table += struct.pack("<HHIHH", tag, kind, 1, value, 0)
        else:
            blob = struct.pack("<II", *value) if kind == 5 else value
            table += struct.pack("<HHII", tag, kind, 1 if kind == 5 else len(blob), data_at + len(data))
            data += blob
    return struct.pack("<H", len(entries)) + table + b"\0\0\0\0" + data


def patch_means(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """The mean colour (0..1) of each patch's core, 8 pixels in from its edges, in an upright image of scene()."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    core = (y % PATCH_H >= 8) & (y % PATCH_H < PATCH_H - 8) & (x % PATCH_W >= 8) & (x % PATCH_W < PATCH_W - 8)
    labels = np.where(core, y // PATCH_H * 4 + x // PATCH_W, -1)
    labels = UPRIGHT[orientation](labels)
    return np.array([pixels[labels == i].mean(0) for i in range(8)]) / 65535


@pytest.mark.parametrize("orientation", sorted(UPRIGHT))
def test_dng_is_developed_upright_in_16_bit_srgb_with_the_cameras_white_balance(tmp_path, orientation):
    image = read_image(write_dng(tmp_path / "shot.dng", orientation))
    turned = orientation in (6, 8)
    assert image.pixels.shape == ((WIDTH, HEIGHT, 3) if turned else (HEIGHT, WIDTH, 3))
    assert image.pixels.dtype == np.uint16 and image.alpha is None and image.format == "DNG"
    # Greys come out grey though the camera saw them as (0.5, 1, 0.7): its white balance was applied, its
    # matrix too, and the sRGB curve without brightening: every patch at its scene value.
    np.testing.assert_allclose(patch_means(image.pixels, orientation), COLOURS, atol=0.01)


def test_a_raw_files_exif_is_kept_upright_in_tiff_png_and_jpeg(tmp_path):
    image = read_image(write_dng(tmp_path / "shot.DNG", orientation=6))
    for suffix in (".tif", ".png", ".jpg"):
        out = tmp_path / f"out{suffix}"
        write_image(out, image)
        with PILImage.open(out) as written:
            exif = written.getexif()
            # TIFF: the fields sit in the main directory; PNG, JPEG: in the EXIF sub-directory.
            fields = {**exif, **exif.get_ifd(IFD.Exif)}
            assert written.size == (HEIGHT, WIDTH)  # upright, so orientation 1
        assert fields[Base.Orientation] == 1, suffix
        assert (fields[Base.Make], fields[Base.Model]) == ("Lgbpn", "TestCam 1"), suffix
        assert fields[Base.ISOSpeedRatings] == 800 and fields[Base.FNumber] == 2.8, suffix
        assert fields[Base.ExposureTime] == 1 / 250 and fields[Base.FocalLength] == 50, suffix
        assert fields[Base.DateTimeOriginal] == "2024:05:06 07:08:09" and fields[Base.ExposureProgram] == 2, suffix
    assert tifffile.imread(tmp_path / "out.tif").dtype == np.uint16


def test_libraw_reads_the_exposure_fields_exifread_cannot_for_raf_and_cr3(tmp_path):
    """RAF and CR3 are not TIFF inside: their EXIF comes from what LibRaw read (no make or model)."""
    with rawpy.imread(str(write_dng(tmp_path / "shot.dng"))) as raw:
        fields = libraw_fields(raw)
    assert fields[Base.ExposureTime] == pytest.approx(1 / 250) and fields[Base.FNumber] == pytest.approx(2.8)
    assert fields[Base.FocalLength] == 50 and fields[Base.ISOSpeedRatings] == 800
    assert fields[Base.DateTimeOriginal] == "2024:05:06 07:08:09" and Base.Make not in fields


def test_raw_suffixes_are_found_in_folders_in_any_case(tmp_path):
    names = ["a.dng", "b.NEF", "c.Cr2", "d.cr3", "e.ARW", "f.raf", "g.orf", "h.RW2", "notes.txt", "i.xmp"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in image_files(tmp_path)] == names[:8]


@pytest.mark.slow
def test_denoise_a_dng_writes_a_16_bit_tiff_beside_a_png_and_jpeg_on_request(tmp_path):
    src = write_dng(tmp_path / "x.dng", orientation=8)
    result = run_cli("denoise", src, "-o", tmp_path / "out/")
    assert result.exit_code == 0, result.output
    with tifffile.TiffFile(tmp_path / "out" / "x.tif") as tif:
        page = tif.pages[0]
        assert page.shape == (WIDTH, HEIGHT, 3) and page.dtype == np.uint16
        assert page.tags["Model"].value == "TestCam 1" and page.tags["Orientation"].value == 1
        denoised = page.asarray()
    # Flat patches stay their colour (the model denoises, it does not develop).
    np.testing.assert_allclose(patch_means(denoised, 8), COLOURS, atol=0.02)
    for name, dtype in (("x.png", np.uint16), ("x.jpg", np.uint8)):
        assert run_cli("denoise", src, "-o", tmp_path / name).exit_code == 0
        assert read_image(tmp_path / name).pixels.dtype == dtype


@pytest.mark.slow
def test_a_raw_file_libraw_cannot_read_is_one_line_and_the_batch_goes_on(tmp_path, capfd):
    folder = tmp_path / "shots"
    folder.mkdir()
    write_dng(folder / "good.dng")
    (folder / "text.NEF").write_text("not a raw file")
    # Truncated in its pixels, its tags whole: LibRaw prints its complaint.
    (folder / "cut.dng").write_bytes(write_dng(tmp_path / "no_exif.dng", with_exif=False).read_bytes()[:3000])
    with pytest.raises(ImageReadError, match="cut.dng: .*Unexpected end of file"):
        read_image(folder / "cut.dng")
    result = run_cli("denoise", folder, "-o", tmp_path / "out")
    assert result.exit_code == 3  # some failed
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower() or "unexpected" in line.lower()]
    assert len(errors) == 2 and "cut.dng" in errors[0] and "text.NEF" in errors[1], result.stderr
    assert all(line.startswith("error: ") and "camera raw file" in line for line in errors)
    assert "Unexpected end of file" in errors[0] and not capfd.readouterr().err  # LibRaw's own line is in ours
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.tif"]
    assert "1 denoised, 0 skipped (output exists), 2 failed" in result.stderr
