"""Shared test helpers: tiny models and images built in the test, and running the CLI."""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image as PILImage

from lgbpn.models import build_model
from lgbpn.precision import native_bf16
from lgbpn.weights import save_weights

# Checks of bf16 as `--precision auto` runs it: only where the CPU has the units (elsewhere auto is fp32).
NEEDS_BF16_UNITS = pytest.mark.skipif(not native_bf16(), reason="needs native bf16 units (AMX or AVX512-BF16)")

TINY = {
    "lgbpn-s": dict(base_ch=8, head_ch=4, local_blocks=1, global_blocks=1),
    "apbsn": dict(base_ch=8, blocks=1),
    "unet": dict(base_ch=4, middle_blocks=1),
    "unet-half": dict(base_ch=4, middle_blocks=1),
}


def tiny_model(arch: str = "lgbpn-s", seed: int = 0, **overrides):
    """A small random network whose output spans the image range (an untrained one outputs ~0)."""
    torch.manual_seed(seed)
    model = build_model(arch, **{**TINY[arch], **overrides})
    last = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    normalized = getattr(model, "normalize", False)  # output already centred on mid-grey
    with torch.no_grad():
        last.weight.normal_(0, 1.0 if normalized else 2.0)
        last.bias.fill_(0.0 if normalized else 100.0)
    return model


def tiny_weights(path: Path, arch: str = "lgbpn-s", **overrides) -> Path:
    save_weights(tiny_model(arch, **overrides), path)
    return path


def noisy_image(h: int, w: int, channels: int = 3, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 0.5 + 0.3 * np.sin(yy / 7.0)[..., None] * np.cos(xx / 5.0)[..., None] * np.ones(channels)
    img = np.clip(base + rng.normal(0, 0.08, (h, w, channels)), 0, 1)
    if dtype == np.uint8:
        return np.round(img * 255).astype(np.uint8)
    if dtype == np.uint16:
        return np.round(img * 65535).astype(np.uint16)
    return img.astype(dtype)


def png(path: Path, pixels: np.ndarray, **options) -> Path:
    """Save with Pillow (not our writer), so the file under test is made independently."""
    PILImage.fromarray(pixels).save(path, **options)
    return path


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def run_cli(*args):
    """`lgbpn ARGS` in this process; an exception that escapes the CLI or a traceback fails the test."""
    # Imported here: tests that only need images or models do not import the CLI.
    from lgbpn.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {type(result.exception).__name__}: {result.exception}\n{result.output}")
    assert "Traceback" not in result.output
    return result


def assert_cli_error(result, name, code: int = 1, progress_bars: bool = False) -> str:
    """Exit `code`, and stderr is exactly one line `error: ...` that names `name`; returns that line."""
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    if progress_bars:  # training draws a progress bar and logs its plan on stderr before it fails
        lines = [line for line in lines if line.startswith("error: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert str(name) in lines[0], lines[0]
    return lines[0]


def noisy_scene(sigma: float, size: int = 64) -> np.ndarray:
    """A smooth uint8 RGB scene with white noise of `sigma` grey levels (a measurable noise level)."""
    yy, xx = np.mgrid[0:size, 0:size]
    base = 110 + 40 * np.sin(yy / 30.0)[..., None] * np.cos(xx / 37.0)[..., None] * np.ones(3)
    return np.clip(base + np.random.default_rng(0).normal(0, sigma, base.shape), 0, 255).round().astype(np.uint8)
