"""Find noisy (and clean) images in the dataset layouts people keep on disk.

`discover(root)` recognises one image file (a noisy sample), or, in this order:

1. SIDD block files (a `.mat` file, or a folder holding them): `ValidationNoisyBlocksSrgb.mat`
   (+ `ValidationGtBlocksSrgb.mat` as clean) and `BenchmarkNoisyBlocksSrgb.mat`.
2. DND: a folder with `info.mat` and `images_srgb/0001.mat ...`; one sample per bounding box.
3. SIDD Medium: `*_NOISY_SRGB_*.PNG` files, clean partner `*_GT_SRGB_*.PNG`.
4. A paired folder: `noisy/` and `clean/` with the same relative file names.
5. Any other folder: every image file is a noisy sample without clean reference.

Layouts were checked against public code:

- SIDD blocks: `wooseoklee4/AP-BSN` src/datahandler/SIDD.py and `zsyOAOA/VDNet`
  datasets/prepare_data/SIDD/big2small_test.py read them with `scipy.io.loadmat(...)[key]` as
  (images, blocks, H, W, 3) uint8 and index block `b` as `[b // 32, b % 32]`. A MATLAB v7.3
  (HDF5) copy stores the same array column-major, so h5py sees the axes reversed.
- DND: the DND toolkit's `denoise_srgb` (copies in `wooseoklee4/AP-BSN` and `Wang-XIaoDingdd/LGBPN`,
  src/util/dnd_submission/dnd_denoise.py) reads `np.array(img['InoisySRGB']).T` (h5py order is
  (C, W, H)), boxes as `np.array(info[info['info']['boundingboxes'][0][i]]).T` -> (20, 4), and crops
  rows `bb[k,0]-1 : bb[k,2]`, columns `bb[k,1]-1 : bb[k,3]` (1-based, inclusive).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import scipy.io

from lgbpn.errors import DataError, ImageReadError
from lgbpn.io import SUPPORTED_SUFFIXES, image_files, read_image
from lgbpn.layout import grey_to_rgb

# noisy key -> (clean file, clean key); the benchmark set has no public ground truth.
SIDD_BLOCK_KEYS = {
    "ValidationNoisyBlocksSrgb": ("ValidationGtBlocksSrgb.mat", "ValidationGtBlocksSrgb"),
    "BenchmarkNoisyBlocksSrgb": None,
}


@dataclass
class Sample:
    name: str  # unique and human readable: a relative path, "ValidationNoisyBlocksSrgb:block_3_7", ...
    noisy: Callable[[], np.ndarray]  # lazy loader -> uint8 HxWxC
    clean: Callable[[], np.ndarray] | None  # None when no clean reference exists


def centre_crop(image: np.ndarray, side: int | None) -> np.ndarray:
    """The central `side` x `side` window of an HxW[xC] image (whole along a shorter side; None: the image), as
    a copy: the whole image is not kept alive by it."""
    if side is None:
        return image
    y, x = max(0, (image.shape[0] - side) // 2), max(0, (image.shape[1] - side) // 2)
    return np.ascontiguousarray(image[y : y + side, x : x + side])


def _centre(load: Callable[[], np.ndarray], side: int) -> np.ndarray:
    return centre_crop(load(), side)


def centre_window(sample: Sample, side: int) -> Sample:
    """`sample` cut to its central `side` x `side` window (whole where smaller), noisy and clean alike."""
    return Sample(sample.name, functools.partial(_centre, sample.noisy, side),
                  functools.partial(_centre, sample.clean, side) if sample.clean is not None else None)


def discover(root: Path) -> list[Sample]:
    """Every sample under `root` (a folder or a SIDD block `.mat` file), in a stable order."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: does not exist")
    if root.is_file():
        if root.suffix.lower() in SUPPORTED_SUFFIXES:  # one photo (e.g. the files of `lgbpn denoise --adapt`)
            return [_image_sample(root.name, root, None)]
        if root.suffix.lower() != ".mat":
            raise DataError(f"{root}: expected a dataset folder, an image or a SIDD block .mat file")
        return _sidd_block_samples(root)
    for finder in (_sidd_folder, _dnd_samples, _sidd_medium_samples, _paired_samples, _plain_samples):
        samples = finder(root)
        if samples:
            return samples
    raise DataError(f"{root}: no images found (looked for SIDD/DND .mat files and png/jpg/tif images)")


def read_rgb(path: Path) -> np.ndarray:
    """An image file as HxWx3 RGB in its own dtype (grey replicated, alpha dropped)."""
    try:
        pixels = read_image(path).pixels
    except ImageReadError as e:
        raise DataError(str(e)) from None
    return grey_to_rgb(pixels)


# --- SIDD validation / benchmark blocks --------------------------------------------------------


def _mat_variables(path: Path) -> dict[str, tuple[int, ...]]:
    """Variable names and shapes (MATLAB order) without loading the data."""
    try:
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as f:
                return {k: tuple(reversed(v.shape)) for k, v in f.items() if isinstance(v, h5py.Dataset)}
        return {name: tuple(shape) for name, shape, _ in scipy.io.whosmat(path)}
    except (OSError, ValueError, NotImplementedError) as e:
        raise DataError(f"{path}: not a readable MATLAB file: {e}") from None


@functools.cache
def load_sidd_blocks(path: Path, key: str) -> np.ndarray:
    """The (images, blocks, H, W, C) uint8 array `key` of a SIDD block file, read once per process.

    The real files are ~250 MB, so the array is cached; callers must not modify it.
    """
    try:
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as f:
                blocks = f[key][()].T  # MATLAB is column-major: h5py sees (C, W, H, blocks, images)
        else:
            blocks = scipy.io.loadmat(path, variable_names=[key])[key]
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"{path}: cannot read variable {key}: {e}") from None
    if blocks.ndim != 5 or blocks.dtype != np.uint8:
        raise DataError(
            f"{path}: {key} must be uint8 (images, blocks, H, W, C), got {blocks.dtype} {blocks.shape}"
        )
    return blocks


def _sidd_block_key(path: Path) -> tuple[str, tuple[int, ...]]:
    """The noisy block variable of a SIDD block file and its (images, blocks, H, W, C) shape."""
    variables = _mat_variables(path)
    key = next((k for k in SIDD_BLOCK_KEYS if k in variables), None)
    if key is None:
        raise DataError(f"{path}: no SIDD noisy block variable ({', '.join(SIDD_BLOCK_KEYS)})")
    if len(variables[key]) != 5:
        raise DataError(f"{path}: {key} must be 5-D (images, blocks, H, W, C), got {variables[key]}")
    return key, variables[key]


def _sidd_block_samples(path: Path) -> list[Sample]:
    path = path.resolve()  # the cache key must not depend on how the path was spelled
    key, shape = _sidd_block_key(path)
    clean_path = clean_key = None
    if SIDD_BLOCK_KEYS[key] is not None:
        clean_name, clean_key = SIDD_BLOCK_KEYS[key]
        if (path.parent / clean_name).is_file():
            clean_path = path.parent / clean_name
            clean_shape = _mat_variables(clean_path).get(clean_key)
            if clean_shape != shape:
                raise DataError(f"{clean_path}: {clean_key} has shape {clean_shape}, noisy blocks {shape}")
    return [
        Sample(
            name=f"{key}:block_{i}_{j}",
            noisy=functools.partial(_sidd_block, path, key, i, j),
            clean=functools.partial(_sidd_block, clean_path, clean_key, i, j) if clean_path else None,
        )
        for i in range(shape[0])
        for j in range(shape[1])
    ]


def _sidd_block(path: Path, key: str, i: int, j: int) -> np.ndarray:
    return load_sidd_blocks(path, key)[i, j].copy()  # a copy keeps the cached array intact


def _sidd_folder(root: Path) -> list[Sample]:
    files = [root / f"{key}.mat" for key in SIDD_BLOCK_KEYS]
    return [s for f in files if f.is_file() for s in _sidd_block_samples(f)]


# --- DND ---------------------------------------------------------------------------------------


def read_dnd_info(root: Path) -> list[tuple[Path, np.ndarray]]:
    """(image file, boxes) per DND image; boxes are (K, 4) int [row1, col1, row2, col2], 1-based inclusive."""
    info_path = Path(root) / "info.mat"
    try:
        with h5py.File(info_path, "r") as f:
            refs = f["info"]["boundingboxes"][()].ravel()  # a MATLAB cell array: one reference per image
            boxes = [np.asarray(f[ref][()]).T.astype(np.int64) for ref in refs]
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise DataError(f"{info_path}: not a DND info file (info.boundingboxes): {e}") from None
    images = []
    for i, b in enumerate(boxes):
        image = Path(root) / "images_srgb" / f"{i + 1:04d}.mat"
        if not image.is_file():
            raise DataError(f"{image}: missing (info.mat lists {len(boxes)} images)")
        if b.ndim != 2 or b.shape[1] != 4:
            raise DataError(f"{info_path}: bounding boxes of image {i + 1} have shape {b.shape}, expected (K, 4)")
        images.append((image, b))
    return images


def read_dnd_crop(path: Path, box: np.ndarray) -> np.ndarray:
    """The uint8 HxWx3 crop `box` ([row1, col1, row2, col2], 1-based inclusive) of a DND sRGB image."""
    r1, c1, r2, c2 = (int(v) for v in box)
    try:
        with h5py.File(path, "r") as f:
            image = f["InoisySRGB"]  # h5py sees MATLAB's (H, W, C) as (C, W, H): slice there, transpose back
            height, width = image.shape[2], image.shape[1]
            if not (1 <= r1 <= r2 <= height and 1 <= c1 <= c2 <= width):
                raise DataError(f"{path}: box {[r1, c1, r2, c2]} lies outside the {height}x{width} image")
            crop = image[:, c1 - 1 : c2, r1 - 1 : r2].T
    except (OSError, KeyError, ValueError, IndexError) as e:
        raise DataError(f"{path}: cannot read InoisySRGB: {e}") from None
    return np.clip(np.round(crop * 255.0), 0, 255).astype(np.uint8)


def _dnd_samples(root: Path) -> list[Sample]:
    if not ((root / "info.mat").is_file() and (root / "images_srgb").is_dir()):
        return []
    return [
        Sample(name=f"dnd:{i + 1:04d}_{k + 1:02d}", noisy=functools.partial(read_dnd_crop, image, box), clean=None)
        for i, (image, boxes) in enumerate(read_dnd_info(root))
        for k, box in enumerate(boxes)
    ]


# --- image folders -----------------------------------------------------------------------------


def _image_sample(name: str, noisy: Path, clean: Path | None) -> Sample:
    return Sample(
        name=name,
        noisy=functools.partial(read_rgb, noisy),
        clean=functools.partial(read_rgb, clean) if clean is not None else None,
    )


def _sidd_medium_samples(root: Path) -> list[Sample]:
    samples = []
    for p in image_files(root):
        if "_NOISY_SRGB_" in p.name:
            gt = p.with_name(p.name.replace("_NOISY_SRGB_", "_GT_SRGB_"))
            samples.append(_image_sample(p.relative_to(root).as_posix(), p, gt if gt.is_file() else None))
    return samples


def _paired_samples(root: Path) -> list[Sample]:
    """Every `noisy/` folder under `root` (root's own included), with its sibling `clean/` if any.

    Collections of sets (e.g. `data/sidd/noisy`, `data/polyu/noisy`) thus load as one dataset, and
    clean references are never mistaken for noisy training images. `root` may itself be the
    `noisy/` folder (`--data DATA/noisy`): its `clean/` sibling, outside `root`, is still used.
    """
    noisy_dirs = sorted(d for d in [root, *root.rglob("*")] if d.is_dir() and d.name == "noisy")
    samples = []
    for noisy_dir in noisy_dirs:
        clean_dir = noisy_dir.parent / "clean"
        prefix = Path() if noisy_dir == root else noisy_dir.parent.relative_to(root)
        for p in image_files(noisy_dir):
            rel = p.relative_to(noisy_dir)
            clean = clean_dir / rel
            name = (prefix / rel).as_posix()
            samples.append(_image_sample(name, p, clean if clean.is_file() else None))
    return samples


def _plain_samples(root: Path) -> list[Sample]:
    return [_image_sample(p.relative_to(root).as_posix(), p, None) for p in image_files(root)]
