"""Distillation targets: a blind-spot teacher's outputs on the training images, computed once.

A student (an ordinary network that sees every pixel) learns noisy -> teacher output, with an L1
loss to each of several targets: the teacher under several test settings (PD preset, R3, our output
corrections). Each target is cached on disk, one file per (teacher, setting, image) named by a hash
of all three, written atomically: an interrupted run keeps what it computed, and a changed teacher,
setting or image never meets an old target.

With `sharpen` s (a fine-tune's setting), each target T becomes T + s (student(T) - T), where student is the
student the run starts from (its network with its coarse pass): its own second pass, as `--strength 1 + s`
gives at twice the time. A student under-denoises, and learns in one pass what two give (docs/training.md,
"The student under-denoises"). `sharpen_ensemble` N makes that pass the student's self-ensemble of N flips and
rotations. Sharpened targets are cached beside the teacher's, keyed on the student (and its ensemble) too.

With `ensemble_targets` N (self-distillation), the one target of each image is instead the starting student's
self-ensemble of N flips and rotations on the noisy image itself (InferenceOptions.ensemble): the student learns in
one pass what averaging its flips and rotations gives (docs/training.md, "Self-distillation").
"""

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from ..corrections import apply_corrections
from ..data.crops import heaviest_extra_noise
from ..data.formats import Sample
from ..errors import ConfigError
from ..io import atomic_path
from ..layout import to_channels_first, to_channels_last
from ..noise import measure_noise
from ..scale import to_model_scale
from ..tiling import denoise_tiled

# Targets are stored as 0..255 values in 1/256 steps (uint16): exact to 0.002 grey levels, half
# the size of float32.
FIXED_POINT = 256


# Part of every target's cache key: bumped when what a setting computes changes (2: the Wiener blend
# on light noise only; 3: on every image again), so old targets are never mixed with new ones.
TARGETS_VERSION = "3"
ADAPTED_TEACHER = "teacher.safetensors"  # in the run folder, with `lgbpn distill --adapt N`


@dataclass(frozen=True)
class TeacherSetting:
    """One way of running the teacher: `preset[:r3][:raw|:lightblend]`, e.g. "sidd", "dnd:r3", "sidd:lightblend"."""

    preset: str
    r3: bool = False
    corrections: bool = True  # our low-frequency correction and Wiener blend ("raw": the paper's output)
    light_blend: bool = False  # the Wiener blend only where the measured noise is light (corrections.py's "auto")

    @classmethod
    def parse(cls, text: str) -> "TeacherSetting":
        preset, *flags = text.split(":")
        unknown = set(flags) - {"r3", "raw", "lightblend"}
        if unknown or not preset or {"raw", "lightblend"} <= set(flags):
            raise ConfigError(f"teacher setting {text!r}: expected PRESET[:r3][:raw|:lightblend], e.g. 'sidd' or 'dnd:r3'")
        return cls(preset, r3="r3" in flags, corrections="raw" not in flags, light_blend="lightblend" in flags)

    def __str__(self) -> str:
        flags = ["r3"] * self.r3 + ["raw"] * (not self.corrections) + ["lightblend"] * self.light_blend
        return ":".join([self.preset] + flags)


def fingerprint(model: nn.Module) -> str:
    """A hash of the teacher: its architecture, settings and every weight."""
    digest = hashlib.sha256(json.dumps([model.arch_name, model.arch_config], sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class TargetCache:
    """Teacher outputs for each (setting, sample), on disk under `root`."""

    def __init__(self, root: Path, teacher: nn.Module, settings: list[TeacherSetting], seed: int = 0,
                 sharpen: float = 0.0, student=None, student_targets: bool = False):
        if not settings:
            raise ConfigError("distillation needs at least one teacher setting")
        if (sharpen or student_targets) and student is None:
            raise ConfigError(f"{'sharpen' if sharpen else 'ensemble_targets'}: the targets come from the student the run "
                              "starts from; give --init (again when resuming)")
        if sharpen and student_targets:
            raise ConfigError("ensemble_targets: the student's own targets are not sharpened; sharpen them in a later run")
        self.root, self.teacher, self.settings, self.seed = Path(root), teacher, settings, seed
        self.teacher_id = fingerprint(teacher)
        self.sharpen, self.student, self.student_targets = sharpen, student, student_targets  # student: a Denoiser
        self.student_id = fingerprint(student.model) if sharpen or student_targets else None

    def to(self, device: torch.device) -> "TargetCache":
        """The teacher, and the sharpening student's second pass, on the training's device (a GPU's, not the CPU's)."""
        self.teacher.to(device)
        if self.student is not None:
            self.student = type(self.student)(self.student.model, self.student.options.replace(device=str(device)))
        return self

    @property
    def corrections_learnt(self) -> bool:
        """Every target holds our output corrections, so the student's output will too."""
        return all(setting.corrections for setting in self.settings)

    def path(self, setting: TeacherSetting, noisy: np.ndarray, sharpened: bool = False) -> Path:
        """The cache file of the teacher's target (or, `sharpened`, of the sharpened one)."""
        parts = [TARGETS_VERSION, self.teacher_id, str(setting), str(self.seed), str(noisy.shape), str(noisy.dtype)]
        if sharpened:
            parts += ["sharpen", self.student_id, repr(self.sharpen)]
            if self.student.options.ensemble > 1:  # (targets cached before the ensemble keep their keys)
                parts.append(f"ensemble {self.student.options.ensemble}")
        return self._cache_file(parts, noisy)

    def _cache_file(self, parts: list[str], noisy: np.ndarray) -> Path:
        """The file named by a hash of `parts` and the image's pixels."""
        key = hashlib.sha256()
        for part in parts:
            key.update(part.encode() + b"\0")
        key.update(np.ascontiguousarray(noisy).tobytes())
        return self.root / f"{key.hexdigest()[:24]}.npy"

    def targets(self, noisy: np.ndarray) -> np.ndarray:
        """(S, H, W, C) float32 targets of one HxWxC noisy image (computed and stored if missing): one per teacher
        setting, or the student's own one."""
        if self.student_targets:
            return self._student_target(noisy)[None]
        target = self._sharpened if self.sharpen else self._target
        return np.stack([target(setting, noisy) for setting in self.settings])

    def fill(self, samples: list[Sample], progress: bool = True, extra_noise: bool = False) -> float:
        """Compute every missing target now (so that training steps never wait for the teacher);
        returns the noise sigma of the noisiest image (the student's range, see noise.py), counting
        each image with the heaviest extra noise if the student's crops get some."""
        noisiest = 0.0
        desc = "student targets" if self.student_targets else "teacher targets"
        for sample in tqdm(samples, desc=desc, unit="image", disable=not progress):
            noisy = sample.noisy()
            self.targets(noisy)
            image = to_model_scale(noisy if noisy.ndim == 3 else noisy[..., None])
            for version in (image, heaviest_extra_noise(image)) if extra_noise else (image,):
                profile = measure_noise(to_channels_first(version))
                noisiest = max(noisiest, profile.sigma if profile else 0.0)
        return noisiest

    def _target(self, setting: TeacherSetting, noisy: np.ndarray) -> np.ndarray:
        return self._cached(self.path(setting, noisy), lambda: self._run_teacher(setting, noisy))

    def _student_target(self, noisy: np.ndarray) -> np.ndarray:
        parts = [TARGETS_VERSION, "student", self.student_id, f"ensemble {self.student.options.ensemble}",
                 str(noisy.shape), str(noisy.dtype)]
        return self._cached(self._cache_file(parts, noisy),  # a float image is 0..1 to the Denoiser
                            lambda: self.student.denoise_pixels(to_model_scale(noisy) / np.float32(255)) * 255.0)

    def _sharpened(self, setting: TeacherSetting, noisy: np.ndarray) -> np.ndarray:
        def compute() -> np.ndarray:
            target = self._target(setting, noisy)
            second = self.student.denoise_pixels(target / 255.0) * 255.0  # a float image is 0..1 to the Denoiser
            return target + self.sharpen * (second - target)

        return self._cached(self.path(setting, noisy, sharpened=True), compute)

    @staticmethod
    def _cached(path: Path, compute) -> np.ndarray:
        """The HxWxC target stored at `path`, computed and stored (fixed point, atomically) if missing."""
        if path.exists():
            return np.load(path).astype(np.float32) / FIXED_POINT
        stored = np.clip(np.round(compute() * FIXED_POINT), 0, np.iinfo(np.uint16).max).astype(np.uint16)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, stored)
        return stored.astype(np.float32) / FIXED_POINT

    def _run_teacher(self, setting: TeacherSetting, noisy: np.ndarray) -> np.ndarray:
        image = noisy if noisy.ndim == 3 else noisy[..., None]
        device = next(self.teacher.parameters()).device
        x = to_channels_first(to_model_scale(image))[None].to(device)
        previous = self.teacher.preset
        self.teacher.preset = setting.preset
        try:
            # fp32 on every device, so that a cached target does not depend on the hardware that made it.
            out = denoise_tiled(self.teacher.eval(), x, r3=setting.r3, seed=self.seed, precision="fp32")
        finally:
            self.teacher.preset = previous
        if setting.corrections:
            out = apply_corrections(out, x, blend="auto" if setting.light_blend else True)
        return to_channels_last(out[0])


def teacher_reference(name_or_path: str | Path) -> str:
    """How a student's weights name their teacher (or base): a shipped model's name, or the weights file's
    absolute path."""
    from ..denoiser import pretrained_dir, pretrained_path

    path = Path(name_or_path)
    if path.parent.resolve() == pretrained_dir().resolve():  # a shipped model's file: by its name
        return path.stem
    return str(name_or_path) if pretrained_path(str(name_or_path)).exists() else str(path.resolve())


def adapt_teacher(teacher: nn.Module, data: list[Path], config, steps: int, path: Path) -> None:
    """Fine-tune the teacher on the student's training images first (self-supervised, as `lgbpn denoise
    --adapt`), and save it to `path`: the run's teacher from then on, its targets keyed by its weights."""
    from ..adapt import adapt_model
    from ..weights import save_weights
    from .trainer import collect_samples

    adapt_model(teacher, collect_samples(data, config.exclude, config.window), steps, config.crop, config.seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_weights(teacher.eval(), path)


def load_teacher(name_or_path: str, preset: str | None = None) -> nn.Module:
    """A shipped model by name (e.g. 'lgbpn-s') or a weights file; it must be a blind-spot network."""
    from ..denoiser import weights_path  # the shipped models live beside the API
    from ..weights import load_model

    model = load_model(weights_path(name_or_path), **({"preset": preset} if preset else {}))
    if not getattr(model, "blind_spot", False):
        raise ConfigError(f"--teacher {name_or_path}: {model.arch_name} is not a blind-spot network; "
                          "distil from one trained on noisy images (lgbpn-s, lgbpn, apbsn-s, ...)")
    return model.eval()


def distill_loss(model: nn.Module, noisy: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the teacher settings of L1(student(noisy), target); targets are (B, S, C, H, W)."""
    out = model(noisy)
    return (out[:, None] - targets).abs().mean()


def run_distillation(data: list[Path], out: Path, config, adapt: int = 0, **train_args) -> dict:
    """`lgbpn distill`: with `adapt`, the teacher first adapts to `data` for that many steps (once: a resumed
    run keeps it) and becomes the run's teacher; then the student trains on the teacher's cached outputs.
    `train_args` go to trainer.train (init, resume, stop_at, val, progress)."""
    from .trainer import train

    out = Path(out)
    if adapt:
        adapted = out / ADAPTED_TEACHER
        if not (train_args.get("resume") and adapted.exists()):
            adapt_teacher(load_teacher(config.teacher), data, config, adapt, adapted)
        config = dataclasses.replace(config, teacher=str(adapted))
    cache = TargetCache(out / "targets", load_teacher(config.teacher), [TeacherSetting.parse(s) for s in config.teacher_settings],
                        config.seed, config.sharpen, _sharpening_student(config, train_args.get("init")),
                        student_targets=bool(config.ensemble_targets))
    return train(data, out, config, targets=cache, **train_args)


def _sharpening_student(config, init: str | Path | None):
    """The Denoiser whose second pass sharpens the targets, or whose self-ensemble makes them (`ensemble_targets`):
    the run's --init student; or None (TargetCache refuses sharpen and ensemble_targets without one)."""
    if not (config.sharpen or config.ensemble_targets) or init is None:
        return None
    from ..denoiser import Denoiser, weights_path

    student = Denoiser.from_weights(weights_path(str(init)), guard=False, coarse=True, teacher_fallback=False,
                                    keep_base=False, precision="fp32",
                                    ensemble=config.ensemble_targets or config.sharpen_ensemble)
    if student.model.blind_spot:
        setting = "sharpen" if config.sharpen else "ensemble_targets"
        raise ConfigError(f"{setting}: --init {init} is a blind-spot network; the targets come from a student")
    return student
