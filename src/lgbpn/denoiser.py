"""The Python API: `Denoiser.from_pretrained()(image)`.

Accepts numpy arrays (uint8, uint16, float in 0..1; HxW, HxWx1, HxWx3, HxWx4 with alpha) or torch
tensors ((C,H,W) or (B,C,H,W); uint8 or float in 0..1) and returns the same type, dtype, shape and
range. Grey images are replicated to RGB for an RGB network and averaged back; alpha passes through.
"""

from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .errors import InputError, WeightsError
from .corrections import apply_corrections
from .nn.lowpass import DEFAULT_SIGMA
from .nn.r3 import R3_PASSES, R3_PROB
from .scale import from_model_scale, to_model_scale
from .tiling import denoise_tiled, prepare_for_inference
from .weights import load_model

DEFAULT_MODEL = "lgbpn-s"


def pretrained_dir() -> Path:
    return Path(str(resources.files("lgbpn") / "pretrained"))


def pretrained_names() -> list[str]:
    return sorted(p.stem for p in pretrained_dir().glob("*.safetensors"))


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {device}: CUDA is not available on this machine")
    return torch.device(device)


class Denoiser:
    def __init__(
        self,
        model: nn.Module,
        *,
        device: str | None = "cpu",
        r3: bool = True,
        passes: int = R3_PASSES,
        prob: float = R3_PROB,
        seed: int = 0,
        tile: int | None = None,
        overlap: int | None = None,
        progress: bool = False,
        lowpass_sigma: float | None = DEFAULT_SIGMA,
        blend: bool = True,
    ):
        # Both corrections off gives the paper's output.
        self.lowpass_sigma = lowpass_sigma  # None: no low-frequency correction
        self.blend = blend  # residual Wiener blend with the input
        self.device = resolve_device(device)
        self.model = prepare_for_inference(model, self.device)
        self.r3, self.passes, self.prob, self.seed = r3, passes, prob, seed
        self.tile, self.overlap, self.progress = tile, overlap, progress
        self.channels = model.arch_config.get("in_ch", 3)

    @classmethod
    def from_weights(cls, path: str | Path, arch: str | None = None, preset: str | None = None, **options):
        overrides = {"preset": preset} if preset else {}
        return cls(load_model(path, arch=arch, **overrides), **options)

    @classmethod
    def from_pretrained(cls, name: str = DEFAULT_MODEL, preset: str | None = None, **options):
        path = pretrained_dir() / f"{name}.safetensors"
        if not path.exists():
            raise WeightsError(f"{name}: no shipped model of that name; shipped: {', '.join(pretrained_names()) or 'none'}")
        return cls.from_weights(path, preset=preset, **options)

    def denoise_batch(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) float on the 0..255 scale -> same."""
        x = x.to(self.device)
        with torch.inference_mode():
            out = denoise_tiled(
                self.model, x, r3=self.r3, passes=self.passes, prob=self.prob, seed=self.seed,
                tile=self.tile, overlap=self.overlap, progress=self.progress,
            )
            out = apply_corrections(out, x, self.lowpass_sigma, self.blend)
        return out.cpu()

    def denoise_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """HxWxC (C = 1 or 3) array of any supported dtype -> denoised array of the same dtype."""
        if pixels.dtype.kind == "f" and not np.isfinite(pixels).all():
            raise InputError("input image contains NaN or Inf values")
        grey = pixels.shape[-1] == 1 and self.channels == 3
        x = to_model_scale(pixels)
        x = np.repeat(x, 3, axis=-1) if grey else x
        if x.shape[-1] != self.channels:
            raise InputError(f"the network takes {self.channels} channels, the image has {pixels.shape[-1]}")
        out = self.denoise_batch(torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None])
        out = out[0].numpy().transpose(1, 2, 0)
        out = out.mean(axis=-1, keepdims=True) if grey else out
        return from_model_scale(out, pixels.dtype)

    def __call__(self, image):
        if isinstance(image, torch.Tensor):
            return self._call_tensor(image)
        if not isinstance(image, np.ndarray):
            raise InputError(f"expected a numpy array or torch tensor, got {type(image).__name__}")
        return self._call_array(image)

    def _call_array(self, image: np.ndarray) -> np.ndarray:
        if image.dtype not in (np.uint8, np.uint16) and image.dtype.kind != "f":
            raise InputError(f"unsupported dtype {image.dtype}; use uint8, uint16 or float")
        if image.dtype.kind == "f" and image.dtype != np.float32:
            out = self._call_array(image.astype(np.float32)).astype(image.dtype)
            if out.ndim == 3 and out.shape[-1] in (2, 4):
                out[..., -1] = image[..., -1]  # alpha untouched at full precision, not via float32
            return out
        if image.ndim == 2 and 0 not in image.shape:
            return self.denoise_pixels(image[..., None])[..., 0]
        if image.ndim != 3 or image.shape[-1] not in (1, 2, 3, 4) or 0 in image.shape:
            raise InputError(f"expected an HxW or HxWxC image with C in 1..4, got shape {image.shape}")
        colour = 1 if image.shape[-1] <= 2 else 3
        out = image.copy()
        out[..., :colour] = self.denoise_pixels(image[..., :colour])
        return out  # alpha (channel 2 of 2 or 4 of 4) untouched

    def _call_tensor(self, image: torch.Tensor) -> torch.Tensor:
        if image.ndim not in (3, 4):
            raise InputError(f"expected a (C,H,W) or (B,C,H,W) tensor, got shape {tuple(image.shape)}")
        batch = image if image.ndim == 4 else image[None]
        arrays = batch.detach().cpu().permute(0, 2, 3, 1).numpy()
        out = np.stack([self._call_array(a) for a in arrays])
        result = torch.from_numpy(out).permute(0, 3, 1, 2).to(image.device)
        return result if image.ndim == 4 else result[0]
