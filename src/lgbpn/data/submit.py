"""Benchmark submission files for SIDD (sRGB) and DND (sRGB).

Formats were checked against public code:

- SIDD CSV (the current Kaggle benchmark, kaggle.com/competitions/sidd-benchmark-srgb-psnr): the
  benchmark's own example script, copied into `wam730/AM-BSN` SIDD_benchmark_submission.py, loops
  `for i in range(40): for j in range(32)`, encodes each (256, 256, 3) uint8 block as
  `base64.b64encode(block.tobytes()).decode('utf-8')` (raw C-order bytes, no .npy header) and writes
  a pandas frame with columns ID = 0..1279 and BLOCK via `to_csv(index=False)`: header `ID,BLOCK`.
- SIDD .mat (the older MATLAB toolkit, copies in `mcash8/CompVisFinalProj` DenoiseSrgb.m,
  SIDD_Denoise.m, Demo_SIDD.m): `DenoisedBlocksSrgb = cell(nImages, nBlocks)`, `TimeMPSrgb` in seconds
  per megapixel and an `OptionalData` struct (MethodName, Authors, ...), saved to `SubmitSrgb.mat`
  with `-v7.3`. We write MATLAB v5 (scipy cannot write v7.3; MATLAB's `load` reads both) and keep the
  blocks uint8 like the noisy input and the CSV (that toolkit copy stores `single` blocks instead).
- DND: the toolkit's `bundle_submissions_srgb` (copy in `wooseoklee4/AP-BSN`
  src/util/dnd_submission/bundle_submissions.py) writes per image `%04d.mat` with `Idenoised` (a
  20-element object array -> 1x20 cell of float32 crops in [0, 1]), `israw=False`,
  `eval_version="1.0"`.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import BinaryIO, Callable, Mapping

import numpy as np
import scipy.io
from tqdm import tqdm

from lgbpn.data.formats import load_sidd_blocks, read_dnd_crop, read_dnd_info
from lgbpn.errors import DataError
from lgbpn.io import atomic_path

SIDD_BENCHMARK_SHAPE = (40, 32, 256, 256, 3)
SIDD_CSV_NAME = "SubmitSrgb.csv"
SIDD_MAT_NAME = "SubmitSrgb.mat"

DenoiseFn = Callable[[np.ndarray], np.ndarray]


def _atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write `path` through lgbpn.io's temp-file-and-rename, so it is never seen half written."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)


def write_sidd_submission(
    blocks: np.ndarray,
    out_dir: Path,
    *,
    shape: tuple[int, ...] = SIDD_BENCHMARK_SHAPE,
    time_mp: float = 0.0,
    optional_data: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Write denoised SIDD benchmark blocks as `SubmitSrgb.csv` and `SubmitSrgb.mat` in `out_dir`.

    `blocks` must be uint8 of `shape` (images, blocks, H, W, C); only tests pass a smaller shape.
    `time_mp` (seconds per megapixel) and `optional_data` (e.g. MethodName) go into the .mat file.
    Returns {"csv": path, "mat": path}.
    """
    blocks = np.asarray(blocks)
    if blocks.dtype != np.uint8 or blocks.shape != tuple(shape):
        raise DataError(f"SIDD submission blocks must be uint8 {tuple(shape)}, got {blocks.dtype} {blocks.shape}")
    out_dir = Path(out_dir)
    flat = blocks.reshape(-1, *blocks.shape[2:])  # row-major: ID = image * blocks_per_image + block

    def write_csv(f: BinaryIO) -> None:
        f.write(b"ID,BLOCK\n")
        for i, block in enumerate(flat):
            f.write(b"%d," % i)
            f.write(base64.b64encode(np.ascontiguousarray(block).tobytes()))
            f.write(b"\n")

    cells = np.empty(blocks.shape[:2], dtype=object)  # savemat writes an object array as a cell array
    for i, j in np.ndindex(cells.shape):
        cells[i, j] = blocks[i, j]
    mat = {
        "DenoisedBlocksSrgb": cells,
        "TimeMPSrgb": float(time_mp),
        "OptionalData": dict(optional_data or {}),
    }
    paths = {"csv": out_dir / SIDD_CSV_NAME, "mat": out_dir / SIDD_MAT_NAME}
    _atomic_write(paths["csv"], write_csv)
    _atomic_write(paths["mat"], lambda f: scipy.io.savemat(f, mat))
    return paths


def read_sidd_submission_csv(path: Path, shape: tuple[int, ...] = SIDD_BENCHMARK_SHAPE) -> np.ndarray:
    """Decode a SIDD submission CSV back to a uint8 array of `shape`."""
    path = Path(path)
    n_blocks, block_shape = shape[0] * shape[1], tuple(shape[2:])
    out = np.empty((n_blocks, *block_shape), dtype=np.uint8)
    n = 0  # blocks decoded so far
    try:
        with open(path, "rb") as f:
            if f.readline().strip() != b"ID,BLOCK":
                raise DataError(f"{path}: header must be 'ID,BLOCK'")
            for row in f:
                block_id, _, data = row.partition(b",")
                if n >= n_blocks or int(block_id) != n:
                    raise ValueError(f"ID {block_id.decode(errors='replace')}, expected {n} (of {n_blocks})")
                block = base64.b64decode(data.strip(), validate=True)
                out[n] = np.frombuffer(block, np.uint8).reshape(block_shape)
                n += 1
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    except ValueError as e:  # also binascii.Error and wrong block sizes
        raise DataError(f"{path}: bad line {n + 2}: {e}") from None
    if n != n_blocks:
        raise DataError(f"{path}: {n} blocks, expected {n_blocks}")
    return out.reshape(shape)


def _denoise(denoise_fn: DenoiseFn, noisy: np.ndarray, what: str) -> np.ndarray:
    out = np.asarray(denoise_fn(noisy))
    if out.shape != noisy.shape or out.dtype != np.uint8:
        raise DataError(f"{what}: denoiser returned {out.dtype} {out.shape}, expected uint8 {noisy.shape}")
    return out


def denoise_sidd_benchmark(
    mat_path: Path, denoise_fn: DenoiseFn, out_dir: Path, method: str, progress: bool = True
) -> dict[str, Path]:
    """Denoise every block of `BenchmarkNoisyBlocksSrgb.mat` and write both submission forms.

    `method` is the .mat file's MethodName: say what was submitted, e.g. which output corrections.
    """
    noisy = load_sidd_blocks(Path(mat_path).resolve(), "BenchmarkNoisyBlocksSrgb")
    denoised = np.empty_like(noisy)
    start = time.perf_counter()
    blocks = tqdm(np.ndindex(noisy.shape[:2]), total=noisy.shape[0] * noisy.shape[1],
                  disable=not progress, desc="SIDD benchmark", unit="block")
    for i, j in blocks:
        denoised[i, j] = _denoise(denoise_fn, noisy[i, j].copy(), f"{mat_path} block ({i}, {j})")
    # The toolkit reports TimeMPSrgb as seconds per megapixel (2**20 pixels).
    time_mp = (time.perf_counter() - start) * 2**20 / noisy[..., 0].size
    return write_sidd_submission(denoised, out_dir, shape=noisy.shape, time_mp=time_mp,
                                 optional_data={"MethodName": method})


def denoise_dnd(dnd_dir: Path, denoise_fn: DenoiseFn, out_dir: Path, progress: bool = True) -> Path:
    """Denoise every DND sRGB bounding box and write the per-image `%04d.mat` bundle into `out_dir`.

    Submit the contents of the returned folder (`out_dir`) to the DND server.
    """
    out_dir = Path(out_dir)
    images = read_dnd_info(Path(dnd_dir))
    bar = tqdm(total=sum(len(boxes) for _, boxes in images), disable=not progress, desc="DND", unit="crop")
    with bar:
        for i, (image, boxes) in enumerate(images):
            crops = np.empty(len(boxes), dtype=object)  # savemat writes it as a 1xK cell array
            for k, box in enumerate(boxes):
                out = _denoise(denoise_fn, read_dnd_crop(image, box), f"{image} box {k + 1}")
                crops[k] = out.astype(np.float32) / 255.0
                bar.update()
            mat = {"Idenoised": crops, "israw": False, "eval_version": "1.0"}
            _atomic_write(out_dir / f"{i + 1:04d}.mat", lambda f, mat=mat: scipy.io.savemat(f, mat))
    return out_dir
