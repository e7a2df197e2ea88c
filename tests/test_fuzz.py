"""Fuzzing: the Python API on random arrays, and the image loader on corrupted files.

The contract under test: the tool either does its job or raises one of its own error types
(`lgbpn.errors.LgbpnError`), never a stray ValueError/RuntimeError/IndexError from deep inside.
"""

import io
import random
import warnings

import numpy as np
import pytest
import tifffile
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from lgbpn.denoiser import Denoiser
from lgbpn.errors import ImageReadError, LgbpnError
from lgbpn.io import Image, read_image, write_image

from .helpers import noisy_image, tiny_model

GOOD_DTYPES = ["uint8", "uint16", "float16", "float32", "float64"]
BAD_DTYPES = ["int8", "int32", "int64", "uint32", "bool", "complex64", "object"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def denoisers():
    model = tiny_model()
    return {True: Denoiser(model, r3=True, passes=2), False: Denoiser(model, r3=False)}


def make_array(rng, shape, dtype, values):
    if dtype == "object":
        return np.empty(shape, dtype=object)
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) > 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    low, high = {"unit": (0.0, 1.0), "out_of_range": (-1.0, 2.0), "huge": (-1e30, 1e30)}[values]
    arr = rng.uniform(low, high, shape)
    if dtype.kind == "c":
        arr = arr + 1j * rng.uniform(low, high, shape)
    return arr.astype(dtype)


sides = st.sampled_from(list(range(1, 41)) * 2 + [0] * 4)  # 0 about 5% of the time
grey = st.tuples(sides, sides)  # H x W
channels = st.tuples(sides, sides, st.sampled_from([1, 2, 3, 4, 1, 3, 0, 5]))  # H x W x C; C = 0 and 5 are bad
other = st.tuples(st.integers(1, 40)) | st.tuples(st.just(1), st.integers(1, 12), st.integers(1, 12), st.just(3))
shapes = st.one_of(grey, channels, grey, channels, other)  # 1-D and 4-D arrays are bad


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shape=shapes,
    dtype=st.sampled_from(GOOD_DTYPES * 4 + BAD_DTYPES),
    values=st.sampled_from(["unit", "unit", "out_of_range", "huge"]),
    poison=st.sampled_from([None] * 6 + [np.nan, np.inf, -np.inf]),
    r3=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
@example(shape=(0, 5), dtype="uint8", values="unit", poison=None, r3=False, seed=0)
@example(shape=(7, 0, 3), dtype="float32", values="unit", poison=None, r3=False, seed=0)
@example(shape=(1, 1), dtype="uint16", values="unit", poison=None, r3=True, seed=0)
@example(shape=(40, 40, 4), dtype="uint8", values="unit", poison=None, r3=True, seed=0)
@example(shape=(3, 7, 2), dtype="float64", values="out_of_range", poison=None, r3=True, seed=0)
@example(shape=(5, 5, 3), dtype="float32", values="unit", poison=np.nan, r3=False, seed=0)
@example(shape=(1, 1, 2), dtype="float16", values="unit", poison=np.nan, r3=False, seed=111)  # NaN alpha: passed through
@example(shape=(5, 5, 3), dtype="float64", values="huge", poison=None, r3=False, seed=0)
def test_api_returns_same_shape_and_dtype_or_raises_our_error(denoisers, shape, dtype, values, poison, r3, seed):
    rng = np.random.default_rng(seed)
    image = make_array(rng, shape, dtype, values)
    if poison is not None and image.dtype.kind in "fc" and image.size:
        image.flat[rng.integers(image.size)] = poison
    valid = (
        dtype in GOOD_DTYPES
        and (len(shape) == 2 or (len(shape) == 3 and 1 <= shape[2] <= 4))
        and 0 not in shape
        and (image.dtype.kind != "f" or (poison is None and values != "huge"))
    )
    original = image.copy()
    try:
        out = denoisers[r3](image)
    except LgbpnError as exc:
        assert not valid, f"valid input refused: {exc}"
        assert "\n" not in str(exc)
        return
    assert isinstance(out, np.ndarray) and out.shape == image.shape and out.dtype == image.dtype
    if out.dtype.kind == "f" and valid:
        assert np.isfinite(out).all()
    if len(shape) == 3 and shape[2] in (2, 4):
        assert np.array_equal(out[..., -1], image[..., -1], equal_nan=out.dtype.kind in "fc")  # alpha untouched, NaN too
    assert np.array_equal(image, original) or image.dtype.kind == "f" and np.isnan(original).any()  # input kept


def test_api_rejects_non_arrays_and_bad_tensors(denoisers):
    for bad in (None, "image.png", [[1, 2], [3, 4]], torch.zeros(5), torch.zeros(1, 1, 1, 3, 8, 8)):
        with pytest.raises(LgbpnError):
            denoisers[False](bad)
    out = denoisers[False](torch.rand(3, 9, 10))
    assert out.shape == (3, 9, 10) and out.dtype == torch.float32


# --------------------------------------------------------------------------- corrupted files

def valid_files():
    """(suffix, bytes) of small valid images in every layout the loader has a path for."""
    rgb, grey = noisy_image(24, 20), noisy_image(16, 12, channels=1)[..., 0]
    files = []

    def pil(arr, fmt, suffix, **kw):
        buf = io.BytesIO()
        PILImage.fromarray(arr).save(buf, fmt, **kw)
        files.append((suffix, buf.getvalue()))

    pil(rgb, "PNG", ".png")
    pil(np.dstack([rgb, rgb[..., 0]]), "PNG", ".png")  # RGBA
    pil(grey, "PNG", ".png")
    buf = io.BytesIO()
    PILImage.fromarray(rgb).quantize(8).save(buf, "PNG")
    files.append((".png", buf.getvalue()))  # palette
    pil(rgb, "JPEG", ".jpg", quality=90)
    pil(rgb, "JPEG", ".jpg", quality=90, progressive=True)
    buf = io.BytesIO()
    exif = PILImage.Exif()
    exif[0x0112] = 6
    PILImage.fromarray(rgb).save(buf, "JPEG", exif=exif)
    files.append((".jpg", buf.getvalue()))  # EXIF-rotated
    for arr, kw in ((rgb, {}), (noisy_image(10, 9, dtype=np.uint16), {"compression": "zlib"}),
                    (noisy_image(8, 7, dtype=np.float32), {}), (grey, {"compression": "zlib"})):
        buf = io.BytesIO()
        tifffile.imwrite(buf, arr, **kw)
        files.append((".tif", buf.getvalue()))
    return files


def corrupt(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        how = rng.choice(["truncate", "flip", "flip_header", "insert", "delete", "zero_tail"])
        pos = rng.randrange(max(1, len(data)))
        if how == "truncate":
            data = data[:pos]
        elif how == "flip":
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(max(1, len(data)))
                if i < len(data):
                    data[i] ^= 1 << rng.randrange(8)
        elif how == "flip_header":  # sizes, bit depths, offsets and tag counts live here
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(min(64, max(1, len(data))))
                if i < len(data):
                    data[i] = rng.randrange(256)
        elif how == "insert":
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
        elif how == "delete":
            del data[pos:pos + rng.randint(1, 32)]
        else:
            data[pos:] = bytes(len(data) - pos)
    return bytes(data)


def test_loader_on_corrupted_files(tmp_path):
    files = valid_files()
    for suffix, data in files:  # the originals are valid
        path = tmp_path / f"valid{suffix}"
        path.write_bytes(data)
        read_image(path)
    rng = random.Random(2024)
    outcomes = {"read": 0, "refused": 0}
    for case in range(300):
        suffix, data = files[case % len(files)]
        path = tmp_path / f"case{case:03d}{suffix}"
        path.write_bytes(corrupt(data, rng))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # damaged EXIF is dropped with a warning: allowed
            try:
                image = read_image(path)
            except ImageReadError as exc:
                message = str(exc)
                assert message.startswith(str(path)) and "\n" not in message, message
                outcomes["refused"] += 1
                continue
        outcomes["read"] += 1
        assert image.pixels.ndim == 3 and image.pixels.shape[2] in (1, 3)
        assert image.pixels.dtype in (np.uint8, np.uint16, np.float32)
        if image.alpha is not None:
            assert image.alpha.shape == image.pixels.shape[:2]
        write_image(tmp_path / f"out{case:03d}.tif", image)  # whatever was read can be written back
    assert outcomes["refused"] > 60 and outcomes["read"] > 20, outcomes


def test_write_fuzz_only_image_write_errors(tmp_path):
    """Odd pixel arrays handed to write_image: written, or refused with ImageWriteError."""
    from lgbpn.errors import ImageWriteError

    rng = np.random.default_rng(1)
    arrays = [rng.integers(0, 255, (4, 5, 3), dtype=np.uint8)[:, ::-1], np.zeros((3, 3, 2), np.uint8),
              np.zeros((0, 3, 3), np.uint8), np.zeros((3, 3), np.uint8), np.zeros((2, 2, 3), np.int32),
              np.zeros((2, 2, 3), np.float64), np.zeros((3, 4, 1), np.uint16).transpose(1, 0, 2)]
    for i, arr in enumerate(arrays):
        for suffix in (".png", ".jpg", ".tif", ".gif"):
            path = tmp_path / f"w{i}{suffix}"
            try:
                write_image(path, Image(arr, None, None, ""))
            except ImageWriteError as exc:
                assert str(path) in str(exc)
            else:
                assert read_image(path).pixels.shape[:2] == arr.shape[:2]
