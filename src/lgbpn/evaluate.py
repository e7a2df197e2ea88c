"""Scoring against clean references: a model on a paired dataset, or a folder of results.

Conventions (see metrics.py): outputs rounded to uint8 (floor(x + 0.5)), data range 255, SSIM on
RGB with scikit-image's defaults, per-image values averaged. The noisy input is scored too.
"""

import csv
import io as _io
import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .data.formats import discover
from .errors import DataError
from .io import atomic_write_bytes, find_images, read_image
from .metrics import psnr, ssim
from .scale import to_model_scale


def _score(pred: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    pred, clean = to_model_scale(pred), to_model_scale(clean)
    if pred.shape != clean.shape:
        raise DataError(f"prediction shape {pred.shape} differs from clean {clean.shape}")
    return psnr(pred, clean), ssim(pred, clean)


def evaluate_model(denoiser, data: Path, limit: int | None = None) -> list[dict]:
    samples = [s for s in discover(data) if s.clean is not None][:limit]
    if not samples:
        raise DataError(f"{data}: no noisy/clean pairs found (expected noisy/ and clean/ with the same names)")
    rows = []
    for sample in tqdm(samples, desc="eval", unit="image"):
        noisy, clean = sample.noisy(), sample.clean()
        denoised = denoiser(noisy)
        n_psnr, n_ssim = _score(noisy, clean)
        d_psnr, d_ssim = _score(denoised, clean)
        rows.append(dict(image=sample.name, noisy_psnr=n_psnr, noisy_ssim=n_ssim, psnr=d_psnr, ssim=d_ssim))
    return rows


def evaluate_folders(pred: Path, clean: Path) -> list[dict]:
    """Score existing results: files matched by relative path, ignoring the suffix."""
    clean_files = {rel.with_suffix("").as_posix(): path for path, rel in find_images([clean])}
    rows = []
    for path, rel in find_images([pred]):
        key = rel.with_suffix("").as_posix()
        if key not in clean_files:
            raise DataError(f"{path}: no clean reference named {key}.* in {clean}")
        p, s = _score(read_image(path).pixels, read_image(clean_files[key]).pixels)
        rows.append(dict(image=rel.as_posix(), psnr=p, ssim=s))
    if not rows:
        raise DataError(f"{pred}: no images to score")
    return rows


def summarise(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if k != "image"]
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}


def format_table(rows: list[dict]) -> str:
    keys = [k for k in rows[0] if k != "image"]
    width = max(len("mean"), *(len(r["image"]) for r in rows))
    lines = [f"{'image':{width}s}  " + "  ".join(f"{k:>10s}" for k in keys)]
    for row in [*rows, {"image": "mean", **summarise(rows)}]:
        lines.append(f"{row['image']:{width}s}  " + "  ".join(f"{row[k]:10.4f}" for k in keys))
    return "\n".join(lines)


def save_results(rows: list[dict], json_path: Path | None, csv_path: Path | None, info: dict | None = None) -> None:
    if json_path:
        payload = {"conventions": "uint8 rounding floor(x+0.5), data range 255, SSIM RGB (skimage defaults), "
                                  "per-image mean", **(info or {}), "mean": summarise(rows), "images": rows}
        atomic_write_bytes(Path(json_path), json.dumps(payload, indent=2).encode())
    if csv_path:
        buffer = _io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(Path(csv_path), buffer.getvalue().encode())
