"""`lgbpn denoise` driven through the real CLI on PNG, 16-bit TIFF, grey JPEG, RGBA PNG and folders."""

import subprocess
import sys

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from PIL import Image as PILImage

from lgbpn.cli import main
from lgbpn.io import read_image

from .helpers import noisy_image, tiny_weights


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return tiny_weights(tmp_path_factory.mktemp("w") / "tiny.safetensors")


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


def test_png_rgb_to_file(tmp_path, weights):
    src = tmp_path / "photo.png"
    PILImage.fromarray(noisy_image(40, 52)).save(src)
    out = tmp_path / "clean.png"
    result = run("denoise", src, "-o", out, "--weights", weights, "--seed", 3)
    assert result.exit_code == 0, result.output
    img = read_image(out)
    assert img.pixels.shape == (40, 52, 3) and img.pixels.dtype == np.uint8
    assert not np.array_equal(img.pixels, noisy_image(40, 52))
    # Same seed, same result; R3 off differs.
    out2 = tmp_path / "again.png"
    run("denoise", src, "-o", out2, "--weights", weights, "--seed", 3)
    assert np.array_equal(read_image(out2).pixels, img.pixels)
    out3 = tmp_path / "nor3.png"
    run("denoise", src, "-o", out3, "--weights", weights, "--no-r3")
    assert not np.array_equal(read_image(out3).pixels, img.pixels)
    out4 = tmp_path / "noblend.png"
    run("denoise", src, "-o", out4, "--weights", weights, "--no-r3", "--no-blend")
    assert not np.array_equal(read_image(out4).pixels, read_image(out3).pixels)


def test_16bit_tiff_keeps_depth(tmp_path, weights):
    src = tmp_path / "raw16.tif"
    tifffile.imwrite(src, noisy_image(36, 33, dtype=np.uint16))
    out = tmp_path / "out"
    result = run("denoise", src, "-o", out, "--weights", weights, "--no-r3")
    assert result.exit_code == 0, result.output
    img = read_image(out / "raw16.tif")
    assert img.pixels.dtype == np.uint16 and img.pixels.shape == (36, 33, 3)
    assert img.pixels.max() > 255  # really 16-bit, not 8-bit data in a 16-bit file


def test_grey_jpeg_stays_grey(tmp_path, weights):
    src = tmp_path / "grey.jpg"
    PILImage.fromarray(noisy_image(48, 40, channels=1)[..., 0]).save(src, quality=95)
    out = tmp_path / "grey_out.jpg"
    result = run("denoise", src, "-o", out, "--weights", weights, "--no-r3")
    assert result.exit_code == 0, result.output
    with PILImage.open(out) as im:
        assert im.mode == "L" and im.size == (40, 48)


def test_rgba_png_alpha_untouched(tmp_path, weights):
    rgb = noisy_image(30, 30)
    alpha = np.tile(np.arange(30, dtype=np.uint8) * 8, (30, 1))
    src = tmp_path / "rgba.png"
    PILImage.fromarray(np.dstack([rgb, alpha]), "RGBA").save(src)
    out = tmp_path / "rgba_out.png"
    assert run("denoise", src, "-o", out, "--weights", weights, "--no-r3").exit_code == 0
    img = read_image(out)
    assert np.array_equal(img.alpha, alpha)
    assert img.pixels.shape == (30, 30, 3)


def test_folder_recursive_names_skip_existing_and_bad_file(tmp_path, weights):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    PILImage.fromarray(noisy_image(32, 32, seed=1)).save(src / "a.png")
    PILImage.fromarray(noisy_image(32, 32, seed=2)).save(src / "sub" / "b.JPG")
    (src / "sub" / "broken.png").write_text("not an image")
    out = tmp_path / "out"
    result = run("denoise", src, "-o", out, "--weights", weights, "--no-r3")
    assert result.exit_code == 3, result.output  # some failed
    assert "broken.png" in result.output and "2 denoised" in result.output and "1 failed" in result.output
    assert (out / "a.png").exists() and (out / "sub" / "b.JPG").exists()
    before = (out / "a.png").stat().st_mtime_ns
    result = run("denoise", src, "-o", out, "--weights", weights, "--no-r3", "--skip-existing")
    assert "2 skipped" in result.output
    assert (out / "a.png").stat().st_mtime_ns == before


def test_refuses_to_overwrite_input(tmp_path, weights):
    src = tmp_path / "x.png"
    PILImage.fromarray(noisy_image(20, 20)).save(src)
    original = src.read_bytes()
    result = run("denoise", src, "-o", src, "--weights", weights)
    assert result.exit_code == 1 and "overwrite an input" in result.output
    assert src.read_bytes() == original


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (5, 90)])
def test_tiny_images(tmp_path, weights, shape):
    src = tmp_path / "tiny.png"
    PILImage.fromarray(noisy_image(*shape)).save(src)
    out = tmp_path / "tiny_out.png"
    result = run("denoise", src, "-o", out, "--weights", weights)
    assert result.exit_code == 0, result.output
    assert read_image(out).pixels.shape == (*shape, 3)


def test_console_script_entry_point(tmp_path, weights):
    src = tmp_path / "p.png"
    PILImage.fromarray(noisy_image(24, 24)).save(src)
    out = tmp_path / "p_out.png"
    cmd = [sys.executable, "-m", "lgbpn", "denoise", str(src), "-o", str(out), "--weights", str(weights), "--no-r3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.exists()
    bad = subprocess.run([*cmd[:4], str(tmp_path / "missing.png"), "-o", str(out)], capture_output=True, text=True)
    assert bad.returncode == 1 and "missing.png" in bad.stderr and "Traceback" not in bad.stderr


def test_models_lists_every_shipped_model_with_its_card_headline():
    from lgbpn.denoiser import DEFAULT_MODEL, pretrained_names

    names = pretrained_names()
    if not names:
        pytest.skip("no shipped weights in this checkout")
    lines = run("models").output.splitlines()
    for name in names:
        line = next(line for line in lines if line.split()[0] == name)
        assert " dB" in line, f"{name}: its card has no headline score"
    assert "(default)" in next(line for line in lines if line.split()[0] == DEFAULT_MODEL)
