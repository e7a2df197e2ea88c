"""Tests for lgbpn.io: every file is built here, in tmp_path."""

import logging
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from PIL import Image as PILImage
from PIL import ImageCms, ImageOps
from PIL.TiffImagePlugin import IFDRational

from lgbpn.cli import main
from lgbpn.errors import ImageReadError, ImageWriteError, WriteError
from lgbpn.io import (
    SUPPORTED_SUFFIXES,
    Image,
    atomic_path,
    atomic_write_bytes,
    find_images,
    image_files,
    read_image,
    write_image,
)

from .helpers import noisy_image, png_chunk, tiny_weights

RNG = np.random.default_rng(0)


def rand(shape, dtype=np.uint8):
    if np.dtype(dtype).kind == "f":
        return RNG.uniform(-0.5, 2.0, shape).astype(dtype)
    return RNG.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)


def smooth(h=32, w=40, c=3):
    """A smooth uint8 image, so JPEG round trips are close."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 3 + y * 2 + 20 + 25 * k for k in range(c)], axis=2).astype(np.uint8)


def assert_one_line_error(excinfo, path):
    message = str(excinfo.value)
    assert str(path) in message
    assert "\n" not in message
    return message


def paeth(a, b, c):
    a, b, c = (x.astype(np.int16) for x in (a, b, c))
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c)).astype(np.uint8)


def filtered_scanlines(arr, bpp):
    """PNG scanlines of an H x W x C uint8 or uint16 array, cycling through all five filter types."""
    rows = arr.astype(f">u{arr.itemsize}").view(np.uint8).reshape(arr.shape[0], -1)
    out, prior = [], np.zeros_like(rows[0])
    for y, row in enumerate(rows):
        left = np.concatenate([np.zeros(bpp, np.uint8), row[:-bpp]])
        up_left = np.concatenate([np.zeros(bpp, np.uint8), prior[:-bpp]])
        kind = y % 5
        average = ((left.astype(np.uint16) + prior) // 2).astype(np.uint8)
        predictor = [np.zeros_like(row), left, prior, average, paeth(left, prior, up_left)][kind]
        out.append(bytes([kind]) + (row - predictor).tobytes())
        prior = row
    return b"".join(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png_bytes(arr, interlace=False):
    """An independent PNG encoder (all filter types, optional Adam7) for H x W x C uint8 or uint16."""
    h, w, c = arr.shape
    bpp = arr.itemsize * c
    if interlace:
        passes = [arr[y0::dy, x0::dx] for x0, y0, dx, dy in ADAM7]
        raw = b"".join(filtered_scanlines(p, bpp) for p in passes if p.size)
    else:
        raw = filtered_scanlines(arr, bpp)
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    return (b"\x89PNG\r\n\x1a\n"
            + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8 * arr.itemsize, colour_type, 0, 0, int(interlace)))
            + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


def pil_load(path):
    """Open with Pillow as an independent reader, without leaking the file handle."""
    with PILImage.open(path) as im:
        im.load()
    return im


def make_image(pixels, alpha=None, **kw):
    return Image(pixels=pixels, alpha=alpha, source=None, format="", **kw)


# ------------------------------------------------------------------------------------ PNG


@pytest.mark.parametrize("mode, channels", [("L", 1), ("RGB", 3), ("RGBA", 4), ("LA", 2)])
def test_png_8bit_read_and_round_trip(tmp_path, mode, channels):
    arr = rand((9, 13, channels))
    src = tmp_path / "in.png"
    PILImage.fromarray(arr[..., 0] if channels == 1 else arr, mode).save(src)
    image = read_image(src)
    assert image.format == "PNG" and image.source == src
    assert image.pixels.dtype == np.uint8 and image.pixels.shape == (9, 13, 1 if channels <= 2 else 3)
    assert image.pixels.flags.writeable and image.pixels.flags.c_contiguous
    assert np.array_equal(image.pixels, arr[..., : image.pixels.shape[2]])
    if channels in (2, 4):
        assert np.array_equal(image.alpha, arr[..., -1])
    else:
        assert image.alpha is None
    out = tmp_path / "out.png"
    write_image(out, image)
    assert pil_load(out).mode == mode
    again = read_image(out)
    assert np.array_equal(again.pixels, image.pixels)
    assert (again.alpha is None) == (image.alpha is None)
    if image.alpha is not None:
        assert np.array_equal(again.alpha, image.alpha)


def test_png_16bit_grey_round_trip(tmp_path):
    arr = rand((11, 7), np.uint16)
    src = tmp_path / "grey16.png"
    PILImage.fromarray(arr).save(src)
    image = read_image(src)
    assert image.pixels.dtype == np.uint16 and np.array_equal(image.pixels[..., 0], arr)
    out = tmp_path / "out.png"
    write_image(out, image)
    assert np.array_equal(np.asarray(pil_load(out)), arr)  # an independent reader agrees


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_compression_levels_are_lossless_and_trade_size(tmp_path, dtype):
    pixels = np.repeat(rand((48, 8, 3), dtype), 8, axis=1)  # repeats that deflate finds at any level but 0
    alpha = rand((48, 64), dtype)
    sizes = {}
    for level in (0, 1, 9):
        out = tmp_path / f"level{level}.png"
        write_image(out, make_image(pixels, alpha), png_compression=level)
        again = read_image(out)
        assert np.array_equal(again.pixels, pixels) and np.array_equal(again.alpha, alpha)
        sizes[level] = out.stat().st_size
    assert sizes[9] <= sizes[1] < sizes[0]
    with pytest.raises(ImageWriteError, match="PNG compression must be an integer 0-9") as excinfo:
        write_image(tmp_path / "bad.png", make_image(pixels), png_compression=10)
    assert_one_line_error(excinfo, tmp_path / "bad.png")


@pytest.mark.parametrize("channels", [2, 3, 4])
@pytest.mark.parametrize("interlace", [False, True])
def test_png_16bit_colour_read_exact(tmp_path, channels, interlace):
    arr = rand((13, 11, channels), np.uint16)
    src = tmp_path / "c16.png"
    src.write_bytes(png_bytes(arr, interlace))
    image = read_image(src)
    colour = 1 if channels == 2 else 3
    assert image.pixels.dtype == np.uint16
    assert np.array_equal(image.pixels, arr[..., :colour])
    if channels in (2, 4):
        assert np.array_equal(image.alpha, arr[..., -1])
    else:
        assert image.alpha is None


@pytest.mark.parametrize("channels", [1, 3])
def test_png_16bit_transparent_colour_becomes_alpha(tmp_path, channels):
    arr = rand((6, 5, channels), np.uint16)
    arr[2, 3] = arr[0, 0]
    data = png_bytes(arr)
    src = tmp_path / "trns.png"
    src.write_bytes(data[:33] + png_chunk(b"tRNS", arr[0, 0].astype(">u2").tobytes()) + data[33:])  # after IHDR
    image = read_image(src)
    assert np.array_equal(image.pixels, arr)
    expected = np.where((arr == arr[0, 0]).all(axis=2), 0, 65535)
    assert image.alpha.dtype == np.uint16 and np.array_equal(image.alpha, expected)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_png_16bit_write_round_trip(tmp_path, channels):
    arr = rand((10, 12, channels), np.uint16)
    pixels, alpha = (arr[..., :-1], arr[..., -1]) if channels in (2, 4) else (arr, None)
    out = tmp_path / "out.png"
    write_image(out, make_image(pixels, alpha))
    again = read_image(out)
    assert np.array_equal(again.pixels, pixels)
    assert (again.alpha is None and alpha is None) or np.array_equal(again.alpha, alpha)
    if channels in (3, 4):  # Pillow reads our file too, keeping the high bytes
        assert np.array_equal(np.asarray(pil_load(out)), (arr >> 8).astype(np.uint8))


@pytest.mark.parametrize("channels", [1, 3])
def test_png_8bit_transparent_colour_and_interlace_as_pillow(tmp_path, channels):
    """8-bit PNGs without a palette are decoded by libpng, not Pillow: the same pixels, a transparent colour
    (tRNS) as an alpha channel as Pillow gives it, interlaced files too."""
    arr = rand((10, 12, channels))
    arr[2, 3] = arr[7, 1] = 17  # the transparent colour, twice
    im = PILImage.fromarray(arr[..., 0] if channels == 1 else arr)
    transparent, interlaced = tmp_path / "t.png", tmp_path / "i.png"
    im.save(transparent, transparency=17 if channels == 1 else (17, 17, 17))
    expected = np.asarray(pil_load(transparent).convert("LA" if channels == 1 else "RGBA"))
    image = read_image(transparent)
    assert np.array_equal(image.pixels, expected[..., :-1]) and np.array_equal(image.alpha, expected[..., -1])
    assert sorted(zip(*np.nonzero(image.alpha == 0))) == [(2, 3), (7, 1)]
    interlaced.write_bytes(png_bytes(arr, interlace=True))
    assert np.array_equal(read_image(interlaced).pixels, arr)


def test_palette_png(tmp_path):
    arr = rand((8, 9, 3))
    pal = PILImage.fromarray(arr).quantize(16)
    plain, transparent = tmp_path / "p.png", tmp_path / "pt.png"
    pal.save(plain)
    pal.save(transparent, transparency=3)
    image = read_image(plain)
    assert image.alpha is None and np.array_equal(image.pixels, np.asarray(pal.convert("RGB")))
    image = read_image(transparent)
    expected = np.asarray(pil_load(transparent).convert("RGBA"))
    assert np.array_equal(image.pixels, expected[..., :3]) and np.array_equal(image.alpha, expected[..., 3])
    assert 0 in image.alpha and 255 in image.alpha


def test_1bit_png_is_grey_0_255(tmp_path):
    bits = rand((6, 10)) > 127
    src = tmp_path / "bw.png"
    PILImage.fromarray(bits).save(src)
    image = read_image(src)
    assert image.pixels.dtype == np.uint8 and set(np.unique(image.pixels)) <= {0, 255}
    assert np.array_equal(image.pixels[..., 0], bits * 255)


def test_icc_profile_kept(tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for name in ("a.png", "b.jpg", "c.tif"):
        write_image(tmp_path / name, make_image(smooth(), icc_profile=icc))
        assert read_image(tmp_path / name).icc_profile == icc
    exif = PILImage.Exif()
    exif[0x0131] = "lgbpn-test"  # Software
    write_image(tmp_path / "d.png", make_image(rand((4, 4, 3), np.uint16), icc_profile=icc, exif=exif.tobytes()))
    written = pil_load(tmp_path / "d.png")
    assert written.info["icc_profile"] == icc and written.getexif()[0x0131] == "lgbpn-test"
    assert read_image(tmp_path / "d.png").icc_profile == icc


# ----------------------------------------------------------------------------------- JPEG


@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_round_trip(tmp_path, channels):
    arr = smooth(c=channels)
    src = tmp_path / "in.jpg"
    PILImage.fromarray(arr[..., 0] if channels == 1 else arr).save(src, quality=95)
    image = read_image(src)
    assert image.format == "JPEG" and image.pixels.shape == arr.shape and image.pixels.dtype == np.uint8
    assert image.pixels.flags.writeable
    assert np.abs(image.pixels.astype(int) - arr).mean() < 2
    out = tmp_path / "out.jpeg"
    write_image(out, image)
    assert np.abs(read_image(out).pixels.astype(int) - arr).mean() < 3


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    rgb = smooth()
    src = tmp_path / "cmyk.jpg"
    PILImage.fromarray(rgb).convert("CMYK").save(src, quality=95)
    image = read_image(src)
    assert image.pixels.shape == rgb.shape and image.pixels.dtype == np.uint8
    assert np.abs(image.pixels.astype(int) - rgb).mean() < 3


def test_orientation_matches_pillow_exif_transpose(tmp_path):
    arr = rand((5, 8, 3))
    for orientation in range(1, 9):
        exif = PILImage.Exif()
        exif[0x0112] = orientation
        src = tmp_path / f"o{orientation}.png"
        PILImage.fromarray(arr).save(src, exif=exif)
        expected = np.asarray(ImageOps.exif_transpose(pil_load(src)))
        assert np.array_equal(read_image(src).pixels, expected), orientation


def test_exif_rotated_jpeg(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = 255  # left half white: after a 90 degree clockwise turn, the top half is white
    exif = PILImage.Exif()
    exif[0x0112] = 6
    exif[0x0131] = "lgbpn-test"  # Software: must survive
    src = tmp_path / "rot.jpg"
    PILImage.fromarray(arr).save(src, exif=exif, quality=95)
    image = read_image(src)
    assert image.pixels.shape == (40, 20, 3)
    assert image.pixels[:20].mean() > 200 and image.pixels[20:].mean() < 50
    for out in (tmp_path / "out.jpg", tmp_path / "out.png"):
        write_image(out, image)
        written = pil_load(out).getexif()
        assert written.get(0x0112, 1) == 1 and written[0x0131] == "lgbpn-test"
        assert read_image(out).pixels.shape == (40, 20, 3)


def test_a_photos_camera_fields_go_into_a_tiff_output(tmp_path):
    """TIFF keeps the photographer's fields (camera, exposure, dates) as tags of its own directory."""
    exif = PILImage.Exif()
    exif[0x0112] = 6
    exif[0x010F], exif[0x0110], exif[0x013C] = "Maker", "Cam 2", "host"  # Make, Model, HostComputer
    exif[0x8769] = {0x829A: IFDRational(1, 60), 0x8827: 1600}  # ExposureTime, ISO
    src = tmp_path / "photo.jpg"
    PILImage.fromarray(smooth()).save(src, exif=exif)
    write_image(tmp_path / "out.tif", read_image(src))
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        tags = {tag.name: tag.value for tag in tif.pages[0].tags}
    assert (tags["Make"], tags["Model"], tags["Orientation"]) == ("Maker", "Cam 2", 1)
    assert "HostComputer" not in tags  # not one of the fields kept
    assert tags["ExposureTime"] == (1, 60) and tags["ISOSpeedRatings"] == 1600


def test_damaged_exif_is_dropped_not_fatal(tmp_path):
    exif = PILImage.Exif()
    exif[0x0112] = 6
    exif[0x011A] = IFDRational(72, 1)  # XResolution
    xresolution_entry = b"\x01\x1a\x00\x05"  # big-endian tag id and type
    # Relabelled as ImageWidth, the fraction is read back but Pillow cannot write it as an integer.
    raw = exif.tobytes().replace(xresolution_entry, b"\x01\x00\x00\x05")
    src = tmp_path / "damaged.jpg"
    PILImage.fromarray(smooth()).save(src, exif=raw)
    with pytest.warns(UserWarning, match="EXIF"):
        image = read_image(src)
    assert image.exif is None
    assert image.pixels.shape == (40, 32, 3)  # the orientation was still applied


def test_jpeg_write_uint16_scaled_and_alpha_dropped(tmp_path):
    pixels = smooth().astype(np.uint16) * 257
    out = tmp_path / "x.jpg"
    with pytest.warns(UserWarning, match="alpha"):
        write_image(out, make_image(pixels, np.full(pixels.shape[:2], 65535, np.uint16)))
    image = read_image(out)
    assert image.alpha is None and np.abs(image.pixels.astype(int) - smooth()).mean() < 2


# ----------------------------------------------------------------------------------- TIFF


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_tiff_round_trip(tmp_path, dtype, channels):
    arr = rand((7, 9, channels), dtype)
    src = tmp_path / "in.tif"
    if channels == 2:
        tifffile.imwrite(src, arr, photometric="minisblack", extrasamples=["unassalpha"])
    else:
        tifffile.imwrite(src, arr[..., 0] if channels == 1 else arr,
                         photometric="rgb" if channels > 2 else "minisblack")
    image = read_image(src)
    colour = 1 if channels <= 2 else 3
    assert image.format == "TIFF" and image.pixels.dtype == dtype
    assert np.array_equal(image.pixels, arr[..., :colour])
    assert image.alpha is None if channels in (1, 3) else np.array_equal(image.alpha, arr[..., -1])
    out = tmp_path / "out.tiff"
    write_image(out, image)
    again = read_image(out)
    assert again.pixels.dtype == dtype and np.array_equal(again.pixels, image.pixels)
    assert again.alpha is None if channels in (1, 3) else np.array_equal(again.alpha, image.alpha)


def test_tiff_planar_multipage_and_conversions(tmp_path):
    chw = rand((3, 6, 5))
    tifffile.imwrite(tmp_path / "planar.tif", chw, photometric="rgb", planarconfig="separate")
    assert np.array_equal(read_image(tmp_path / "planar.tif").pixels, np.moveaxis(chw, 0, -1))

    pages = rand((4, 6, 5))
    tifffile.imwrite(tmp_path / "pages.tif", pages, photometric="minisblack")
    assert np.array_equal(read_image(tmp_path / "pages.tif").pixels[..., 0], pages[0])

    f64 = RNG.normal(size=(4, 5)) * 1e3
    tifffile.imwrite(tmp_path / "f64.tif", f64)
    image = read_image(tmp_path / "f64.tif")
    assert image.pixels.dtype == np.float32 and np.allclose(image.pixels[..., 0], f64, rtol=1e-6)

    i16 = RNG.integers(0, 30000, (4, 5), dtype=np.int16)
    tifffile.imwrite(tmp_path / "i16.tif", i16)
    image = read_image(tmp_path / "i16.tif")
    assert image.pixels.dtype == np.uint16 and np.array_equal(image.pixels[..., 0], i16)

    tifffile.imwrite(tmp_path / "neg.tif", -i16 - 1)
    with pytest.raises(ImageReadError) as excinfo:
        read_image(tmp_path / "neg.tif")
    assert "int16" in assert_one_line_error(excinfo, tmp_path / "neg.tif")


def test_tiff_orientation_tag_applied(tmp_path):
    arr = rand((4, 6))
    src = tmp_path / "o.tif"
    tifffile.imwrite(src, arr, extratags=[(274, 3, 1, 6, True)])
    assert np.array_equal(read_image(src).pixels[..., 0], np.rot90(arr, -1))


def test_tiff_that_needs_pillow(tmp_path):
    """tifffile needs imagecodecs for LZW and does not apply palettes; Pillow reads these losslessly."""
    arr = rand((6, 7, 3))
    src = tmp_path / "lzw.tif"
    PILImage.fromarray(arr).save(src, compression="tiff_lzw")
    image = read_image(src)
    assert image.format == "TIFF" and np.array_equal(image.pixels, arr)

    grey16 = rand((6, 7), np.uint16)
    PILImage.fromarray(grey16).save(tmp_path / "grey16.tif", compression="tiff_lzw")
    image = read_image(tmp_path / "grey16.tif")
    assert image.pixels.dtype == np.uint16 and np.array_equal(image.pixels[..., 0], grey16)

    palette = PILImage.fromarray(arr).quantize(8)
    palette.save(tmp_path / "pal.tif")
    assert np.array_equal(read_image(tmp_path / "pal.tif").pixels, np.asarray(palette.convert("RGB")))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("channel", [0, 3])  # colour or alpha
def test_non_finite_tiff_rejected(tmp_path, bad, channel):
    arr = np.ones((4, 4, 4), np.float32)
    arr[1, 2, channel] = bad
    src = tmp_path / "bad.tif"
    tifffile.imwrite(src, arr, photometric="rgb")
    with pytest.raises(ImageReadError) as excinfo:
        read_image(src)
    assert "NaN/Inf" in assert_one_line_error(excinfo, src)


# --------------------------------------------------------------------------- read errors


def write_valid(path):
    """Write a valid, incompressible image in the format named by the suffix."""
    arr = rand((64, 64, 3))
    if path.suffix == ".tif":
        tifffile.imwrite(path, arr)
    elif path.name == "c16.png":
        path.write_bytes(png_bytes(arr.astype(np.uint16) * 257))
    else:
        PILImage.fromarray(arr).save(path, quality=95)


def huge_png():
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IEND", b"")


def patch_tiff_tag(path, tag, value):
    """Overwrite the inline value of `tag` in the first IFD of a little-endian TIFF."""
    data = bytearray(path.read_bytes())
    ifd = struct.unpack_from("<I", data, 4)[0]
    for entry in range(ifd + 2, ifd + 2 + 12 * struct.unpack_from("<H", data, ifd)[0], 12):
        if struct.unpack_from("<H", data, entry)[0] == tag:
            struct.pack_into("<I", data, entry + 8, value)  # SHORT or LONG, stored inline
    path.write_bytes(bytes(data))


def zero_width_png():
    header = struct.pack(">IIBBBBB", 0, 5, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IEND", b"")


@pytest.mark.parametrize("name, content, expected", [
    ("missing.png", None, "not found"),
    ("empty.png", b"", "empty"),
    ("text.png", b"hello, I am not an image\n", "unrecognised"),
    ("notes.txt", b"plain text", "unrecognised"),
    ("huge.png", huge_png(), "too large"),
    ("zero.png", zero_width_png(), ""),  # Pillow itself refuses it; the wording is Pillow's choice
])
def test_unreadable_files(tmp_path, name, content, expected):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageReadError) as excinfo:
        read_image(path)
    assert expected in assert_one_line_error(excinfo, path)


def test_zero_size_tiff(tmp_path):
    path = tmp_path / "zero.tif"
    tifffile.imwrite(path, np.ones((2, 3), np.uint8))
    patch_tiff_tag(path, 256, 0)  # ImageWidth
    with pytest.raises(ImageReadError) as excinfo:
        read_image(path)
    assert "zero size" in assert_one_line_error(excinfo, path)


def test_16bit_colour_tiff_codecs(tmp_path):
    """imagecodecs gives tifffile LZW and other codecs; a colour model Pillow would reduce to 8 bits is refused."""
    arr = rand((4, 5, 3), np.uint16)
    path = tmp_path / "lzw16.tif"
    tifffile.imwrite(path, arr, photometric="rgb", compression="lzw")
    assert np.array_equal(read_image(path).pixels, arr)

    path = tmp_path / "cmyk16.tif"
    tifffile.imwrite(path, rand((4, 5, 4), np.uint16), photometric="separated")
    with pytest.raises(ImageReadError) as excinfo:
        read_image(path)
    assert "SEPARATED" in assert_one_line_error(excinfo, path)


def test_unsupported_format_and_folder(tmp_path):
    gif = tmp_path / "anim.gif"
    PILImage.fromarray(rand((4, 4, 3))).save(gif)
    for path in (gif, tmp_path):
        with pytest.raises(ImageReadError) as excinfo:
            read_image(path)
        assert_one_line_error(excinfo, path)


@pytest.mark.parametrize("name", ["t.png", "t.jpg", "t.tif", "c16.png"])
def test_truncated_files(tmp_path, name):
    path = tmp_path / name
    write_valid(path)
    read_image(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ImageReadError) as excinfo:
        read_image(path)
    assert "truncated" in assert_one_line_error(excinfo, path)


@pytest.mark.parametrize("name", ["one.png", "one.jpg", "one.tif"])
def test_1x1_image(tmp_path, name):
    pixels = np.array([[[10, 200, 30]]], np.uint8)
    write_image(tmp_path / name, make_image(pixels))
    image = read_image(tmp_path / name)
    assert image.pixels.shape == (1, 1, 3)
    assert np.abs(image.pixels.astype(int) - pixels).max() <= (0 if name != "one.jpg" else 8)


# --------------------------------------------------------------------------------- writing


def test_write_errors(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    cases = [
        (blocker / "out.png", make_image(smooth()), "cannot write"),
        (tmp_path / "out.gif", make_image(smooth()), ".gif"),
        (tmp_path / "out.png", make_image(rand((4, 4, 2))), "pixels"),
        (tmp_path / "out.png", make_image(smooth(), np.zeros((3, 3), np.uint8)), "alpha"),
    ]
    for path, image, expected in cases:
        with pytest.raises(ImageWriteError) as excinfo:
            write_image(path, image)
        assert expected in assert_one_line_error(excinfo, path)
    assert sorted(os.listdir(tmp_path)) == ["blocker"]


@pytest.mark.parametrize("suffix, dtype", [(".png", np.uint16), (".jpg", np.uint8)])
def test_float_pixels_converted_to_the_format_and_said(tmp_path, caplog, suffix, dtype):
    pixels = np.linspace(-0.25, 1.25, 5 * 8 * 3, dtype=np.float32).reshape(5, 8, 3)
    out = tmp_path / f"out{suffix}"
    with caplog.at_level(logging.WARNING, logger="lgbpn.io"):
        write_image(out, make_image(pixels))
    peak = np.iinfo(dtype).max
    assert f"{out}: " in caplog.text and f"{8 * np.dtype(dtype).itemsize}-bit" in caplog.text and ".tif" in caplog.text
    written = read_image(out).pixels
    assert written.dtype == dtype
    expected = np.round(np.clip(pixels, 0, 1) * peak)  # values outside 0..1 clipped
    assert np.abs(written - expected).max() <= (0 if suffix == ".png" else 8)


def test_cli_writes_float_tiff_as_16bit_png(tmp_path, caplog):
    """`lgbpn denoise float.tif -o out.png`: the format follows the suffix, with a note."""
    src, out = tmp_path / "float.tif", tmp_path / "out.png"
    tifffile.imwrite(src, noisy_image(24, 20, dtype=np.float32), photometric="rgb")
    weights = tiny_weights(tmp_path / "tiny.safetensors")
    with caplog.at_level(logging.WARNING, logger="lgbpn.io"):
        result = CliRunner().invoke(main, ["denoise", str(src), "-o", str(out), "--weights", str(weights), "--no-r3"])
    assert result.exit_code == 0, result.output
    image = read_image(out)
    assert image.pixels.dtype == np.uint16 and image.pixels.shape == (24, 20, 3)
    assert "16-bit" in caplog.text


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores folder permissions")
def test_write_into_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ImageWriteError) as excinfo:
            write_image(folder / "x.png", make_image(smooth()))
        assert "ermission denied" in assert_one_line_error(excinfo, folder / "x.png")
    finally:
        folder.chmod(0o700)


def test_atomic_writes(tmp_path):
    out = tmp_path / "new" / "deeper" / "out.png"
    write_image(out, make_image(smooth()))
    assert os.listdir(out.parent) == ["out.png"]

    target = tmp_path / "data.bin"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"

    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".") and tmp.suffix == ".tmp"
        tmp.write_bytes(b"half")
        raise RuntimeError("encoder failed")
    assert target.read_bytes() == b"second"

    with pytest.raises(WriteError) as excinfo, atomic_path(target):  # an OSError while writing, e.g. disk full
        raise OSError(28, "No space left on device")
    assert "No space left" in assert_one_line_error(excinfo, target)
    assert not isinstance(excinfo.value, ImageWriteError)  # checkpoints, logs, JSON: not images
    assert target.read_bytes() == b"second"
    assert sorted(os.listdir(tmp_path)) == ["data.bin", "new"]


def test_output_file_permissions_follow_umask(tmp_path):
    out = tmp_path / "x.tif"
    write_image(out, make_image(smooth()))
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


# ------------------------------------------------------------------------------- find_images


def test_find_images(tmp_path):
    root = tmp_path / "photos"
    for rel in ["b.png", "a/c.JPG", "a/z/d.TIFF", "a/e.jpeg", "notes.txt", "a/readme",
                ".hidden.png", "a/.x.png.1a2b3c4d.tmp", ".cache/f.png"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    single = tmp_path / "single.txt"
    single.write_text("given explicitly")
    pairs = find_images([root, single])
    assert pairs == [
        (root / "a/c.JPG", Path("a/c.JPG")),
        (root / "a/e.jpeg", Path("a/e.jpeg")),
        (root / "a/z/d.TIFF", Path("a/z/d.TIFF")),
        (root / "b.png", Path("b.png")),
        (single, Path("single.txt")),
    ]
    assert find_images([]) == []
    assert {".png", ".jpg", ".jpeg", ".tif", ".tiff"} <= SUPPORTED_SUFFIXES
    assert image_files(root / "a") == [root / "a/c.JPG", root / "a/e.jpeg", root / "a/z/d.TIFF"]


def test_find_images_missing_input(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ImageReadError) as excinfo:
        find_images([missing])
    assert_one_line_error(excinfo, missing)


def test_no_warnings_on_normal_reads(tmp_path):
    src = tmp_path / "x.png"
    PILImage.fromarray(smooth()).save(src)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_image(src)
