"""Per-image adaptation (`lgbpn denoise --adapt N`): a few self-supervised steps on the inputs.

The training loss needs no clean image, so the loaded model can be fine-tuned on the very photos
it is about to denoise, adapting it to a camera it has never seen.
"""

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .data.crops import NoisyCrops
from .data.formats import Sample
from .errors import LgbpnError
from .io import read_image
from .layout import grey_to_rgb
from .train.trainer import self_supervised_loss

ADAPT_LR = 5e-5
ADAPT_BATCH = 4
ADAPT_CROP = 120


def _rgb_loader(path: Path, channels: int):
    def load() -> np.ndarray:
        pixels = read_image(path).pixels
        return grey_to_rgb(pixels) if channels == 3 else pixels

    return load


def adapt_to_images(denoiser, paths: list[Path], steps: int, seed: int = 0) -> list[float]:
    """Fine-tune `denoiser.model` in place on crops of `paths`; returns the losses."""
    samples, sides = [], []
    for p in paths:
        try:
            sides.append(min(read_image(p).pixels.shape[:2]))
        except LgbpnError:
            continue  # an unreadable file is reported (and counted) when it is denoised
        samples.append(Sample(str(p), _rgb_loader(p, denoiser.channels), None))
    if not samples:
        return []
    return adapt_model(denoiser.model, samples, steps, min(sides), seed)


def adapt_model(model: torch.nn.Module, samples: list[Sample], steps: int, smallest_side: int, seed: int = 0) -> list[float]:
    """Fine-tune `model` in place (on its device) on crops of `samples`; returns the losses."""
    crops = NoisyCrops(samples, crop=max(40, min(ADAPT_CROP, smallest_side)), seed=seed)
    device = next(model.parameters()).device
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=ADAPT_LR)
    losses = []
    for step in tqdm(range(steps), desc="adapt", unit="step"):
        x = torch.stack([crops[step * ADAPT_BATCH + j] for j in range(ADAPT_BATCH)]).to(device)
        loss = self_supervised_loss(model, x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return losses
