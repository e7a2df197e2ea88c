"""Random training crops of noisy images, deterministic by (seed, global sample index).

Crop k of the run is a pure function of the seed and k: a resumed run draws exactly the crops the
uninterrupted run would have, and under DDP each rank takes its slice of every global batch, so the
global batch equals the single-process one whatever the number of ranks.
"""

import io
import warnings
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage
from torch.utils.data import Dataset, Sampler

from ..errors import DataError
from ..layout import to_channels_first
from ..noise import measure_noise
from ..scale import to_model_scale
from ..synthetic import camera_noise
from .camera import ISO_RANGE, sample_camera, simulate
from .formats import Sample, read_rgb

CACHE_BYTES = 2 << 30  # decoded images kept in memory per process
# Extra camera noise for a distillation's inputs: photons at white drawn log-uniformly in this range
# (150 is the demo's ISO; 20 is heavier than any photo in ../shared, 2000 a barely visible grain).
EXTRA_NOISE_PHOTONS = (20.0, 2000.0)
# Half of them then go through JPEG at a random quality, as most cameras' photos do.
EXTRA_NOISE_JPEG_QUALITY = (70, 98)
# Extra structure for a distillation's crops: a fine periodic pattern (a grille, a fabric), this
# strong in grey levels, over part of the crop, added alike to the input and its targets.
EXTRA_PATTERN_AMPLITUDE = (4.0, 40.0)
# A simulated crop is cut this much larger on each side, then trimmed: demosaicking and the in-camera
# filters see the photo around it, as in a whole photo, instead of a mirrored border.
SIMULATION_MARGIN = 8


class NoisyCrops(Dataset):
    """Item k: a random crop (with a random flip and rotation) of a noisy image, as (C, H, W).

    With `targets` (an object whose `targets(noisy)` gives (S, H, W, C) arrays for the image, such
    as distillation's teacher outputs), item k is (noisy crop, (S, C, H, W) target crops), cut and
    turned alike. With `extra_noise` > 0, that share of the noisy crops get more camera noise on top
    (see synthetic.py), their targets unchanged: a student learns to remove noise of levels and
    textures that its training photos do not hold. With `extra_pattern` > 0, that share of the crops get
    a fine periodic pattern added to the input and its targets alike: structure above the noise,
    which the student must keep, of a kind its training photos may not hold.

    With `simulated` > 0 (and targets), that share of the items are instead clean photos (`clean_photos`,
    image files) given a simulated camera's noise (data/camera.py), each target the same capture without
    the noise: the noise of cameras, ISOs and in-camera pipelines that the training photos do not hold,
    learnt with exact targets. With `scene_targets` > 0, that share of the simulated pairs have as target
    the scene before the sensor's mosaic instead of the demosaicked capture (camera.simulate).
    """

    def __init__(self, samples: list[Sample], crop: int, seed: int = 0, targets=None, extra_noise: float = 0.0,
                 extra_pattern: float = 0.0, simulated: float = 0.0, clean_photos: list[Path] = (),
                 scene_targets: float = 0.0):
        if not samples:
            raise ValueError("no training images")
        if simulated and (targets is None or not clean_photos):
            raise ValueError("simulated pairs need clean photos and a distillation's targets")
        self.samples, self.crop, self.seed, self.targets = samples, crop, seed, targets
        self.extra_noise, self.extra_pattern = extra_noise, extra_pattern
        self.simulated, self.clean_photos, self.scene_targets = simulated, list(clean_photos), scene_targets
        self._cache: OrderedDict[object, tuple[np.ndarray, np.ndarray | None]] = OrderedDict()
        self._warned: set[int] = set()
        self._unreadable: set[int] = set()

    def __len__(self) -> int:
        return 1 << 62  # indices are global sample numbers, drawn by StepSampler

    def _cached(self, key, load) -> tuple[np.ndarray, np.ndarray | None]:
        """load() -> (image, targets or None), kept in memory (least recently used dropped first)."""
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        self._cache[key] = load()
        while sum(a.nbytes for pair in self._cache.values() for a in pair if a is not None) > CACHE_BYTES \
                and len(self._cache) > 1:
            self._cache.popitem(last=False)
        return self._cache[key]

    def _image(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The decoded noisy image (H, W, C) and its targets (S, H, W, C) or None, kept in memory."""
        def load():
            image = self.samples[i].noisy()
            image = image[..., None] if image.ndim == 2 else image
            return image, self.targets.targets(image) if self.targets is not None else None

        return self._cached(i, load)

    def __getitem__(self, index: int) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index])
        if self.simulated and rng.random() < self.simulated:
            return self._simulated_pair(rng)
        i = int(rng.integers(len(self.samples)))
        image, targets = self._image(i)
        h, w = image.shape[:2]
        if (h < self.crop or w < self.crop) and i not in self._warned:
            self._warned.add(i)
            warnings.warn(f"{self.samples[i].name}: {h}x{w} is smaller than the {self.crop} crop; mirrored to fit")
        cut = random_cut(rng, h, w, self.crop)
        noisy = to_model_scale(cut(image))
        target_crops = None if targets is None else np.stack([cut(t) for t in targets])
        if target_crops is not None and self.extra_pattern and rng.random() < self.extra_pattern:
            pattern = fine_pattern(rng, self.crop, noisy.shape[-1])
            noisy, target_crops = np.clip(noisy + pattern, 0, 255), np.clip(target_crops + pattern, 0, 255)
        if self.extra_noise and rng.random() < self.extra_noise:
            noisy = with_camera_noise(noisy, rng)
        noisy = to_channels_first(noisy)
        if target_crops is None:
            return noisy
        return noisy, to_channels_first(target_crops)

    def _clean_photo(self, j: int) -> np.ndarray | None:
        """Clean photo j, kept in memory; None (reported once, then never drawn again) if it cannot be read."""
        try:
            return self._cached(("clean", j), lambda: (read_rgb(self.clean_photos[j]), None))[0]
        except DataError as error:
            warnings.warn(f"{error}; left out of the clean photos")
            self._unreadable.add(j)
            return None

    def _simulated_pair(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A crop of a clean photo through a simulated camera: (noisy, its noiseless capture as every target)."""
        photo = None
        while photo is None:
            if len(self._unreadable) == len(self.clean_photos):
                raise DataError("none of the clean photos can be read")
            j = int(rng.integers(len(self.clean_photos)))
            photo = None if j in self._unreadable else self._clean_photo(j)
        size = self.crop + 2 * SIMULATION_MARGIN
        patch = random_cut(rng, *photo.shape[:2], size)(photo)
        scene = bool(self.scene_targets) and rng.random() < self.scene_targets  # no draw at 0: old runs' crops stay
        noisy, clean = simulate(to_model_scale(patch) / np.float32(255), rng, scene_target=scene)
        inner = slice(SIMULATION_MARGIN, SIMULATION_MARGIN + self.crop)
        noisy, clean = to_model_scale(noisy[inner, inner]), clean[inner, inner] * np.float32(255)
        settings = len(self._image(0)[1])  # one target per teacher setting, as the real crops have
        return to_channels_first(noisy), to_channels_first(np.repeat(clean[None], settings, axis=0))


def random_cut(rng: np.random.Generator, h: int, w: int, crop: int):
    """A function that cuts one random crop x crop window, turned and flipped alike, from any (H, W, C) array
    of that size (mirrored to fit where the image is smaller)."""
    y = int(rng.integers(max(1, h - crop + 1)))
    x = int(rng.integers(max(1, w - crop + 1)))
    turns, flip = int(rng.integers(4)), bool(rng.integers(2))

    def cut(array: np.ndarray) -> np.ndarray:
        patch = array[y : y + crop, x : x + crop]
        if patch.shape[0] < crop or patch.shape[1] < crop:
            patch = np.pad(patch, ((0, crop - patch.shape[0]), (0, crop - patch.shape[1]), (0, 0)), mode="symmetric")
        patch = np.rot90(patch, turns)
        return patch[:, ::-1] if flip else patch

    return cut


def with_camera_noise(noisy: np.ndarray, rng: np.random.Generator, photons: float | None = None,
                      jpeg: bool | None = None) -> np.ndarray:
    """(H, W, C) 0..255 crop -> with extra camera noise, 8-bit, maybe JPEG-compressed (level and JPEG
    drawn from `rng` unless given)."""
    if photons is None:
        photons = float(np.exp(rng.uniform(*np.log(EXTRA_NOISE_PHOTONS))))
    rgb = np.repeat(noisy, 3, axis=-1) if noisy.shape[-1] == 1 else noisy  # the mosaic needs RGB
    out = camera_noise(rgb / 255.0, photons, rng) * 255.0
    out = out.mean(-1, keepdims=True) if noisy.shape[-1] == 1 else out
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    if jpeg is None:
        jpeg = rng.random() < 0.5
    if jpeg:
        buffer = io.BytesIO()
        PILImage.fromarray(out.squeeze(-1) if out.shape[-1] == 1 else out).save(
            buffer, "JPEG", quality=int(rng.integers(*EXTRA_NOISE_JPEG_QUALITY, endpoint=True)))
        out = np.asarray(PILImage.open(buffer)).reshape(out.shape)
    return out.astype(np.float32)


def fine_pattern(rng: np.random.Generator, size: int, channels: int) -> np.ndarray:
    """(size, size, channels) whole grey levels: a grating or a lattice (a checkerboard, a mesh: the
    product of two crossed gratings), soft (sine) or hard (square wave), period 2 to 6 pixels, any
    orientation, of one random colour, over a random rectangle of at least a third of each side."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle, frequency = rng.uniform(0, np.pi), rng.uniform(1 / 6, 1 / 2)  # cycles per pixel
    along, across = np.cos(angle) * xx + np.sin(angle) * yy, np.cos(angle) * yy - np.sin(angle) * xx
    wave = np.sin(2 * np.pi * frequency * along + rng.uniform(0, 2 * np.pi))
    if rng.random() < 0.5:  # a lattice
        wave = wave * np.sin(2 * np.pi * frequency * across + rng.uniform(0, 2 * np.pi))
    if rng.random() < 0.5:
        wave = np.sign(wave)
    h, w = (int(rng.integers(size // 3, size + 1)) for _ in range(2))
    y, x = int(rng.integers(size - h + 1)), int(rng.integers(size - w + 1))
    region = np.zeros((size, size), np.float32)
    region[y : y + h, x : x + w] = 1
    colour = rng.uniform(0.5, 1.0, channels).astype(np.float32)
    return np.round(rng.uniform(*EXTRA_PATTERN_AMPLITUDE) * (wave * region)[..., None] * colour).astype(np.float32)


def heaviest_extra_noise(noisy: np.ndarray, seed: int = 0) -> np.ndarray:
    """The image with the heaviest extra noise a crop can get (no JPEG): the top of a student's range."""
    return with_camera_noise(noisy, np.random.default_rng(seed), photons=EXTRA_NOISE_PHOTONS[0], jpeg=False)


def heaviest_simulated_noise(cameras: int = 32, seed: int = 0) -> float:
    """The noise sigma (0..255) that simulated pairs reach: the 90th percentile over random cameras at the
    top ISO of a flat mid-grey capture (no in-camera noise reduction, no JPEG): the top of a student's range."""
    rng = np.random.default_rng(seed)
    grey = np.full((64, 64, 3), 0.5, np.float32)
    sigmas = []
    for _ in range(cameras):
        camera = replace(sample_camera(rng, iso=ISO_RANGE[1]), luma_nr=0.0, chroma_blur=0.0, jpeg_quality=None)
        noisy, _ = simulate(grey, rng, camera)
        sigmas.append(measure_noise(to_channels_first(to_model_scale(noisy))).sigma)
    return float(np.percentile(sigmas, 90))


class StepSampler(Sampler[int]):
    """Global sample indices for steps start..steps-1, this rank's slice of each global batch."""

    def __init__(self, start_step: int, steps: int, global_batch: int, rank: int = 0, world: int = 1):
        self.start, self.steps, self.global_batch = start_step, steps, global_batch
        self.per_rank = global_batch // world
        self.offset = rank * self.per_rank

    def __iter__(self):
        for step in range(self.start, self.steps):
            base = step * self.global_batch + self.offset
            yield from range(base, base + self.per_rank)

    def __len__(self) -> int:
        return max(0, self.steps - self.start) * self.per_rank
