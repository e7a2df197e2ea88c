"""`lgbpn demo`: a photo with realistic camera noise, denoised by the shipped model, scored."""

import logging
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from .io import Image, write_image
from .metrics import psnr, ssim
from .synthetic import demo_image

log = logging.getLogger(__name__)


def _zoom(image: np.ndarray, box: tuple[int, int, int], factor: int) -> np.ndarray:
    y, x, size = box
    return image[y : y + size, x : x + size].repeat(factor, 0).repeat(factor, 1)


def comparison_figure(noisy: np.ndarray, denoised: np.ndarray, clean: np.ndarray, box=(70, 160, 128),
                      denoised_label: str = "denoised") -> np.ndarray:
    """Labelled noisy | denoised | reference, each with its PSNR; below, the boxed region (the face:
    flat skin shows leftover noise, hair and eyes show lost detail) enlarged to the full panel width."""
    height, width = clean.shape[:2]
    y, x, size = box
    factor = width // size  # the crops fill the panel width
    panels = [(f"noisy   PSNR {psnr(noisy, clean):.2f} dB", noisy),
              (f"{denoised_label}   PSNR {psnr(denoised, clean):.2f} dB", denoised),
              ("reference (clean)", clean)]
    gap, strip = 12, 40  # between panels; the text rows
    crops_top = strip + height + strip
    canvas = np.full((crops_top + size * factor, 3 * width + 2 * gap, 3), 255, dtype=np.uint8)
    for i, (_, image) in enumerate(panels):
        left = i * (width + gap)
        canvas[strip : strip + height, left : left + width] = image
        canvas[crops_top:, left : left + size * factor] = _zoom(image, box, factor)
    figure = PILImage.fromarray(canvas)
    draw = ImageDraw.Draw(figure)
    font = ImageFont.load_default(size=24)
    for i, (label, _) in enumerate(panels):
        left = i * (width + gap)
        draw.text((left + 4, strip // 2), label, fill=(0, 0, 0), font=font, anchor="lm")
        # Outside the box, so the framed pixels are the zoomed ones.
        draw.rectangle([left + x - 2, strip + y - 2, left + x + size + 1, strip + y + size + 1],
                       outline=(255, 210, 0), width=2)
    draw.text((4, strip + height + strip // 2), f"yellow box enlarged {factor}x (nearest neighbour)",
              fill=(0, 0, 0), font=font, anchor="lm")
    return np.asarray(figure)


def run_demo(denoiser, output: Path, name: str | None = None) -> dict:
    """Denoise and score the demo photo; `name`: the shipped model's name or the weights file, for the model line."""
    clean, noisy = demo_image()
    log.info("model: %s%s; input: scikit-image's astronaut photo with simulated camera noise "
             "(Bayer shot+read noise, demosaicked)", f"{name}: " if name else "", denoiser.describe())
    denoised = denoiser(noisy)
    figure = comparison_figure(noisy, denoised, clean, denoised_label=f"denoised ({denoiser.model.arch_name})")
    output.mkdir(parents=True, exist_ok=True)
    for name, pixels in (("noisy", noisy), ("denoised", denoised), ("reference", clean), ("comparison", figure)):
        write_image(output / f"{name}.png", Image(pixels=pixels, alpha=None, source=None, format="PNG"))
    scores = {
        "noisy": (psnr(noisy, clean), ssim(noisy, clean)),
        "denoised": (psnr(denoised, clean), ssim(denoised, clean)),
    }
    for name, (p, s) in scores.items():
        log.info("%-9s PSNR %6.2f dB   SSIM %.4f", name, p, s)
    log.info("wrote %s/noisy.png, denoised.png, reference.png, comparison.png", output)
    return scores
