"""Shared test helpers: tiny models and images built in the test."""

from pathlib import Path

import numpy as np
import torch

from lgbpn.models import build_model
from lgbpn.weights import save_weights

TINY = {
    "lgbpn-s": dict(base_ch=8, head_ch=4, local_blocks=1, global_blocks=1),
    "apbsn": dict(base_ch=8, blocks=1),
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
