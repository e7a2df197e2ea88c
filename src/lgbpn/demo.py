"""`lgbpn demo`: a photo with realistic camera noise, denoised by the shipped model, scored."""

from pathlib import Path

import click
import numpy as np

from .io import Image, write_image
from .metrics import psnr, ssim
from .synthetic import demo_image


def _zoom(image: np.ndarray, box: tuple[int, int, int], factor: int) -> np.ndarray:
    y, x, size = box
    return image[y : y + size, x : x + size].repeat(factor, 0).repeat(factor, 1)


def comparison_figure(noisy: np.ndarray, denoised: np.ndarray, clean: np.ndarray, box=(150, 170, 96)) -> np.ndarray:
    """noisy | denoised | reference on top; 3x zoomed crops of the same region below."""
    gap = 8
    top = [noisy, denoised, clean]
    zooms = [_zoom(im, box, 3) for im in top]
    width = sum(im.shape[1] for im in top) + 2 * gap
    height = top[0].shape[0] + gap + zooms[0].shape[0]
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    x = 0
    for full, zoom in zip(top, zooms):
        canvas[: full.shape[0], x : x + full.shape[1]] = full
        y0 = full.shape[0] + gap
        canvas[y0 : y0 + zoom.shape[0], x : x + zoom.shape[1]] = zoom
        x += full.shape[1] + gap
    return canvas


def run_demo(denoiser, output: Path) -> dict:
    clean, noisy = demo_image()
    click.echo(f"model: {denoiser.model.arch_name} ({'R3 on' if denoiser.r3 else 'R3 off'}); "
               "input: scikit-image's astronaut photo with simulated camera noise (Bayer shot+read noise, demosaicked)")
    denoised = denoiser(noisy)
    output.mkdir(parents=True, exist_ok=True)
    for name, pixels in (("noisy", noisy), ("denoised", denoised), ("reference", clean),
                         ("comparison", comparison_figure(noisy, denoised, clean))):
        write_image(output / f"{name}.png", Image(pixels=pixels, alpha=None, source=None, format="PNG"))
    scores = {
        "noisy": (psnr(noisy, clean), ssim(noisy, clean)),
        "denoised": (psnr(denoised, clean), ssim(denoised, clean)),
    }
    for name, (p, s) in scores.items():
        click.echo(f"{name:9s} PSNR {p:6.2f} dB   SSIM {s:.4f}")
    click.echo(f"wrote {output}/noisy.png, denoised.png, reference.png, comparison.png")
    return scores
