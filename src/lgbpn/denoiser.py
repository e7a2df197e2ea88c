"""The Python API: `Denoiser.from_pretrained()(image)`.

Accepts numpy arrays (uint8, uint16, float in 0..1; HxW, HxWx1, HxWx3, HxWx4 with alpha) or torch
tensors ((C,H,W) or (B,C,H,W); uint8, uint16 or float in 0..1) and returns the same type, dtype,
shape, device and range; a tensor stays in torch throughout. Grey images are replicated to RGB for
an RGB network and averaged back; alpha passes through. How the network runs (device, precision,
R3, tiles, output corrections) is an `InferenceOptions`.
"""

import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .coarse import apply_coarse_pass, coarse_suits, halve
from .corrections import finish_output
from .errors import InputError, WeightsError
from .layout import grey_to_rgb, rgb_to_grey, to_channels_first, to_channels_last
from .nn.wiener import GUARD_NOISE_FACTOR
from .noise import STUDENT_NOISE_MARGIN, NoiseProfile, auto_preset, measure_noise
from .options import InferenceOptions
from .selfscore import error_db, keep_base_mask, noise_samples, view_error
from .strength import apply_strength
from .tilewise import PEAKS, denoise_by_tiles, from_network_scale, measured_crop, to_network_scale
from .tiling import denoise_tiled, prepare_for_inference
from .weights import load_model

DEFAULT_MODEL = "lgbpn-fast"
MODEL_ALIASES = {"fast": "lgbpn-fast"}  # short names for `--model`
logger = logging.getLogger(__name__)


def pretrained_dir() -> Path:
    return Path(str(resources.files("lgbpn") / "pretrained"))


def pretrained_path(name: str) -> Path:
    """Where the shipped model `name` (or its alias) lives (the file may not exist)."""
    return pretrained_dir() / f"{MODEL_ALIASES.get(name, name)}.safetensors"


def weights_path(source: str | Path) -> Path:
    """The weights file of `source`: a shipped model's name (or alias), else `source` itself as a path."""
    shipped = pretrained_path(str(source))
    return shipped if shipped.exists() else Path(source)


def pretrained_names() -> list[str]:
    return sorted(p.stem for p in pretrained_dir().glob("*.safetensors"))


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {device}: CUDA is not available on this machine")
    return torch.device(device)


class Denoiser:
    """A model and how to run it: `Denoiser(model, options)`, or `Denoiser(model, r3=False, ...)` with
    option fields as keywords (over `options`, or over the defaults). `progress`: True draws a tile bar on
    stderr; a function is called with (tiles done, tiles) after each tile of each pass."""

    def __init__(self, model: nn.Module, options: InferenceOptions | None = None, *, progress: bool | Callable = False,
                 **changes):
        self.options = (options or InferenceOptions()).replace(**changes)
        self.device = resolve_device(self.options.device)
        self.model = prepare_for_inference(model, self.device)
        self.progress = progress
        self.channels = model.arch_config.get("in_ch", 3)
        self._teacher: Denoiser | None | bool = None  # a student's fallback, loaded when first needed
        self._base: Denoiser | None = None  # an adapted student's base, loaded when first needed
        # Seconds spent in the network and in the output corrections (or guard), summed over calls; the rest
        # of a call is conversions. `lgbpn bench --compare` reports them.
        self.stage_seconds: Counter[str] = Counter()

    @property
    def r3(self) -> bool:
        return self.options.r3

    def describe(self) -> str:
        """What runs, in words: a distilled student's architecture and guard, or a network's preset, R3 and
        output corrections (a student that learnt the corrections is not given them again)."""
        model = self.model
        if model.corrections_learnt:
            options = self.options
            parts = [model.arch_name, "a distilled student (corrections learnt)", options.describe_coarse(),
                     f"guard {'on' if options.guard else 'off'}", *options.describe_last(blind_spot=False)]
            return ", ".join(part for part in parts if part)
        preset = f"preset {self.options.preset}, " if model.presets else ""
        return f"{model.arch_name}, {preset}{self.options.describe(model.blind_spot)}"

    @classmethod
    def from_weights(cls, path: str | Path, arch: str | None = None, preset: str | None = None,
                     options: InferenceOptions | None = None, **kwargs):
        if preset:
            kwargs["preset"] = preset
        return cls(load_model(path, arch=arch), options, **kwargs)

    @classmethod
    def from_pretrained(cls, name: str = DEFAULT_MODEL, preset: str | None = None,
                        options: InferenceOptions | None = None, **kwargs):
        path = pretrained_path(name)
        if not path.exists():
            raise WeightsError(f"{name}: no shipped model of that name; shipped: {', '.join(pretrained_names()) or 'none'}")
        return cls.from_weights(path, preset=preset, options=options, **kwargs)

    def denoise_batch(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) float on the 0..255 scale -> the same, on x's device (with the preset of x[0]), at the
        options' strength."""
        return apply_strength(self._denoise_once, x, self.options.strength)

    def _denoise_once(self, x: torch.Tensor) -> torch.Tensor:
        """denoise_batch at strength 1."""
        noisy = x.to(self.device)
        noise = self._measured_noise(x[0])
        teacher = self._teacher_for(noise)
        if teacher is not None:
            return teacher._denoise_once(x)
        self._set_preset(x[0])
        coarse = self._coarse_pass(noise)
        with torch.inference_mode():
            out = self._network_output(noisy, coarse)
            if self.model.base is not None and self.options.keep_base:
                out = self._keep_base(noisy, out, coarse)
        return out.to(x.device)

    def _network_output(self, noisy: torch.Tensor, coarse: bool, options: InferenceOptions | None = None) -> torch.Tensor:
        """The network's output with its coarse pass (if `coarse`) and its output corrections or guard, run
        with `options` (default: the Denoiser's)."""
        options = self.options if options is None else options
        start = time.perf_counter()
        out = denoise_tiled(self.model, noisy, options, progress=self.progress)
        if coarse:
            out = apply_coarse_pass(out, denoise_tiled(self.model, halve(noisy), options))
        finished = time.perf_counter()
        out = finish_output(out, noisy, self.model.corrections_learnt, self.options.lowpass_sigma,
                            self.options.blend, self.options.guard, in_place=True)
        self.stage_seconds.update(network=finished - start, corrections=time.perf_counter() - finished)
        return out

    def _keep_base(self, noisy: torch.Tensor, out: torch.Tensor, coarse: bool) -> torch.Tensor:
        """An adapted student's output, with its base's wherever the base scores better: the error against
        second noisy views (selfscore.py), compared per region. Never worse than where it started, by that
        measure. On the views, and for the base's reference pass, each network runs once, without its
        self-ensemble, which the base runs only where it is kept: with `ensemble=8` 4.3 s per MP on four 4 MP
        photos, two of them kept (2 threads; 5.2 when the base's ensemble always ran; docs/usage.md, keep-base)."""
        if self._base is None:
            self._base = Denoiser.from_weights(weights_path(self.model.base), options=self.options)
        single = dataclasses.replace(self.options, ensemble=1)
        base_once = self._base._network_output(noisy, coarse, single)  # its noise samples' reference
        samples = noise_samples(noisy, base_once)
        error = view_error(lambda view: self._network_output(view, coarse, single), noisy, samples)
        base_error = view_error(lambda view: self._base._network_output(view, coarse, single), noisy, samples)
        keep = keep_base_mask(error, base_error)
        share = float(keep.mean())
        logger.info("%s kept on %.0f%% of the image, where its noisy-view score is higher (whole image: adapted "
                    "%.2f dB, %s %.2f dB)", self.model.base, 100 * share, error_db(error), self.model.base,
                    error_db(base_error))
        if not share:
            return out
        # The base's output as `out` is made (its self-ensemble, if any), at strength 1: the strength applies once, after.
        base_out = base_once if self.options.ensemble == 1 else self._base._network_output(noisy, coarse)
        return torch.lerp(out, base_out, keep)

    def _measured_noise(self, image: torch.Tensor) -> NoiseProfile | None:
        """The noise of a (C, H, W) 0..255 image, measured once for the choices an ordinary network makes
        by it (teacher fallback, coarse pass); None for a blind-spot network, which makes neither."""
        return None if self.model.blind_spot else measure_noise(image)

    def _coarse_pass(self, noise: NoiseProfile | None) -> bool:
        """Whether the network also runs on the halved image (coarse.py) for an image with this measured noise:
        an ordinary network, and with "auto" where the noise is heavy."""
        coarse = self.options.coarse
        if self.model.blind_spot or coarse is False:
            return False
        return coarse is True or coarse_suits(noise)

    def _teacher_for(self, profile: NoiseProfile | None) -> "Denoiser | None":
        """A student's teacher when the image's measured noise is beyond anything the student was distilled on."""
        limit = self.model.noise_sigma_max
        if limit is None or not self.options.teacher_fallback or self._teacher is False:
            return None
        if profile is None or profile.sigma <= STUDENT_NOISE_MARGIN * limit:
            return None
        try:
            teacher = self._load_teacher()
        except WeightsError as exc:
            logger.warning("noise beyond this student's range, and its teacher cannot be loaded (%s): "
                           "the student denoises it", exc)
            self._teacher = False
            return None
        logger.info("noise sigma %.1f is beyond the student's range (its noisiest training input: %.1f): "
                    "the teacher %s denoises this image (%s)", profile.sigma, limit, self.model.teacher, teacher.describe())
        return teacher

    def _load_teacher(self) -> "Denoiser":
        """A distilled student's teacher, loaded once, with the same options."""
        if not isinstance(self._teacher, Denoiser):
            source = self.model.teacher
            if source is None:
                raise WeightsError(f"{self.model.arch_name} is neither a blind-spot network nor a student with a teacher")
            self._teacher = Denoiser.from_weights(weights_path(source), options=self.options, progress=self.progress)
        return self._teacher

    def blind_spot(self) -> "Denoiser":
        """This denoiser if its network is blind-spot, else a distilled student's teacher: what `--adapt`
        fine-tunes, as its loss is the noisy image itself (an ordinary network would learn to copy it)."""
        if self.model.blind_spot:
            return self
        teacher = self._load_teacher()
        logger.info("adapting a distilled student means adapting its blind-spot teacher: %s adapts and denoises",
                    self.model.teacher)
        return teacher

    def _set_preset(self, image: torch.Tensor) -> None:
        if not self.model.presets:
            return
        preset = self.options.preset
        if preset == "auto":
            preset, profile = auto_preset(image, self.options.corrected)
            if profile is not None:
                logger.info("preset %s (noise sigma %.1f, neighbour correlation %.2f)", preset, profile.sigma,
                            profile.correlation)
        self.model.preset = preset

    def denoise_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """HxWxC (C = 1 or 3) array of any supported dtype -> denoised array of the same dtype: tile by tile
        from the array to the array where every step after the network is local (tilewise.py), else through
        whole-image tensors."""
        if self._by_tiles():
            return self._denoise_pixels_by_tiles(pixels)
        return to_channels_last(self._denoise_colour(to_channels_first(pixels)))

    def _by_tiles(self) -> bool:
        """Whether the output needs nothing beyond each tile's surroundings: no whole-image corrections (a
        student's guard is local but for one statistic, see tilewise.py), no keep-base, strength up to 1."""
        options, model = self.options, self.model
        local = model.corrections_learnt or (not options.lowpass_sigma and not options.blend)
        return local and not (model.base is not None and options.keep_base) and 0 < options.strength <= 1

    def _denoise_pixels_by_tiles(self, pixels: np.ndarray) -> np.ndarray:
        if pixels.dtype.kind == "f" and not np.isfinite(pixels).all():
            raise InputError("input image contains NaN or Inf values")
        if pixels.shape[-1] != self.channels and not (pixels.shape[-1] == 1 and self.channels == 3):
            raise InputError(f"the network takes {self.channels} channels, the image has {pixels.shape[-1]}")
        crop = measured_crop(pixels, self.device, self.channels)
        noise = self._measured_noise(crop[0])
        teacher = self._teacher_for(noise)
        if teacher is not None:
            return teacher.denoise_pixels(pixels)
        self._set_preset(crop[0])
        guard = GUARD_NOISE_FACTOR if self.model.corrections_learnt and self.options.guard else None
        with torch.inference_mode():
            return denoise_by_tiles(self.model, pixels, self.options, guard, self.device, crop, self._coarse_pass(noise),
                                    self.stage_seconds, self.progress)

    def __call__(self, image):
        if isinstance(image, torch.Tensor):
            return self._call_tensor(image)
        if not isinstance(image, np.ndarray):
            raise InputError(f"expected a numpy array or torch tensor, got {type(image).__name__}")
        return self._call_array(image)

    def _call_array(self, image: np.ndarray) -> np.ndarray:
        if image.dtype not in (np.uint8, np.uint16) and image.dtype.kind != "f":
            raise InputError(f"unsupported dtype {image.dtype}; use uint8, uint16 or float")
        if image.ndim == 2 and 0 not in image.shape:
            return self._call_array(image[..., None])[..., 0]
        if image.ndim != 3 or image.shape[-1] not in (1, 2, 3, 4) or 0 in image.shape:
            raise InputError(f"expected an HxW or HxWxC image with C in 1..4, got shape {image.shape}")
        colour = 1 if image.shape[-1] <= 2 else 3
        if image.shape[-1] == colour:
            return self.denoise_pixels(image)
        result = image.copy()  # alpha (channel 2 of 2 or 4 of 4) untouched
        result[..., :colour] = self.denoise_pixels(image[..., :colour])
        return result

    def _call_tensor(self, image: torch.Tensor) -> torch.Tensor:
        if image.ndim not in (3, 4) or image.shape[-3] not in (1, 2, 3, 4) or 0 in image.shape:
            raise InputError(f"expected a (C,H,W) or (B,C,H,W) tensor with C in 1..4, got shape {tuple(image.shape)}")
        if image.dtype not in PEAKS and not image.is_floating_point():
            raise InputError(f"unsupported dtype {image.dtype}; use uint8, uint16 or float")
        image = image.detach()  # no gradients through the denoiser
        batch = image if image.ndim == 4 else image[None]
        colour = 1 if batch.shape[1] <= 2 else 3
        result = batch.clone()  # alpha (channel 2 of 2 or 4 of 4) untouched, at its own precision
        # One image at a time: R3 masks depend on the index in a batch, and tiles bound one image's memory.
        for i, one in enumerate(batch):
            result[i, :colour] = self._denoise_colour(one[:colour])
        return result if image.ndim == 4 else result[0]

    def _denoise_colour(self, image: torch.Tensor) -> torch.Tensor:
        """(C, H, W), C = 1 or 3, of a supported dtype -> denoised, same dtype and device."""
        x = to_network_scale(image)  # one full-size copy (a 12 MP image: 144 MB)
        if image.is_floating_point() and not torch.isfinite(x).all():  # integers are finite (a 12 MP check: 0.6 s)
            raise InputError("input image contains NaN or Inf values")
        if self.options.strength == 0:  # the input itself: no network, and no float round trip through the 0..255 scale
            return image.clone()
        grey = x.shape[0] == 1 and self.channels == 3
        x = grey_to_rgb(x, axis=-3) if grey else x
        if x.shape[0] != self.channels:
            raise InputError(f"the network takes {self.channels} channels, the image has {image.shape[0]}")
        out = self.denoise_batch(x[None])[0]
        out = rgb_to_grey(out, axis=-3) if grey else out
        return from_network_scale(out, image.dtype)

