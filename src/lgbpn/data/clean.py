"""Training pairs from clean photos: random crops through the camera simulator (camera.py).

The photos come from a folder such as the clean corpus that scripts/build_clean_corpus.py builds (by
default ~/.cache/lgbpn/clean-corpus), or from arrays in memory. Item k is a pure function of the seed
and k, as NoisyCrops's are (crops.py), so a resumed or distributed run draws the same pairs.
"""

import fnmatch
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ImageReadError
from ..io import image_files, read_image
from ..layout import grey_to_rgb, to_channels_first
from ..scale import convert_depth
from .camera import simulate
from .crops import CACHE_BYTES

CORPUS = Path("~/.cache/lgbpn/clean-corpus").expanduser()


def clean_photos(folder=CORPUS, exclude: Sequence[str] = ()) -> list[Path]:
    """The photos in `folder` and its subfolders (sorted), less those whose file name matches one of the `exclude` globs
    (e.g. '*NikonD800*' to leave a camera out, 'polyu__*' a whole set)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of clean photos (build one with scripts/build_clean_corpus.py)")
    photos = [p for p in image_files(folder) if not any(fnmatch.fnmatch(p.name, pattern) for pattern in exclude)]
    if not photos:
        raise FileNotFoundError(f"{folder}: no photos left (exclude={list(exclude)})")
    return photos


class SimulatedPairs(Dataset):
    """Item k: (noisy, clean), each a (3, crop, crop) float32 tensor on the 0..255 scale: a random crop of
    a random photo, randomly turned and flipped, through a random simulated camera (camera.simulate);
    clean is the same capture without noise.

    `photos`: files (a bad one is reported once and left out) or (H, W, 3) / (H, W) uint8 arrays.
    """

    def __init__(self, photos: Sequence, crop: int, seed: int = 0):
        if not len(photos):
            raise ValueError("no clean photos")
        self.photos, self.crop, self.seed = list(photos), crop, seed
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return 1 << 62  # indices are global sample numbers (crops.StepSampler)

    def _photo(self, i: int) -> np.ndarray | None:
        """Photo i as (H, W, 3) uint8, kept in memory; None for a file that cannot be read."""
        source = self.photos[i]
        if isinstance(source, np.ndarray):
            return grey_to_rgb(source[..., None] if source.ndim == 2 else source)[..., :3]
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        try:
            pixels = read_image(source).pixels
        except ImageReadError as error:
            warnings.warn(f"{error}; left out of the clean photos")
            self._bad.add(i)
            return None
        self._cache[i] = pixels = grey_to_rgb(convert_depth(pixels, np.uint8))[..., :3]
        while sum(a.nbytes for a in self._cache.values()) > CACHE_BYTES and len(self._cache) > 1:
            self._cache.popitem(last=False)
        return pixels

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index])
        photo = None
        while photo is None:
            if len(self._bad) == len(self.photos):
                raise ImageReadError("none of the clean photos can be read")
            i = int(rng.integers(len(self.photos)))
            photo = None if i in self._bad else self._photo(i)
        h, w = photo.shape[:2]
        y, x = int(rng.integers(max(1, h - self.crop + 1))), int(rng.integers(max(1, w - self.crop + 1)))
        patch = photo[y : y + self.crop, x : x + self.crop]
        if patch.shape[0] < self.crop or patch.shape[1] < self.crop:
            patch = np.pad(patch, ((0, self.crop - patch.shape[0]), (0, self.crop - patch.shape[1]), (0, 0)), mode="symmetric")
        patch = np.rot90(patch, int(rng.integers(4)))
        if rng.integers(2):
            patch = patch[:, ::-1]
        noisy, clean = simulate(patch.astype(np.float32) / 255, rng)
        return to_channels_first(noisy.astype(np.float32)), to_channels_first(clean * np.float32(255))
