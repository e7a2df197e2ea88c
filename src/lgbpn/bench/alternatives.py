"""The comparison's denoisers, each run as its users run it, measured inside a worker process.

OpenCV, OIDN and BM3D are imported here, in the worker that times them, so a missing or broken one
fails its own row only.
"""

import os
import resource
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from ..data.formats import centre_crop, discover, read_rgb
from ..denoiser import Denoiser
from ..metrics import psnr, to_uint8
from ..models import build_model
from ..options import InferenceOptions
from ..tiling import plan_tiles
from .cases import guarded, peak_rss_mb
from .plan import WARMUP_SIDE, Method


def _pixels(h: int, w: int) -> int:
    return h * w


def _network(method: Method, trained: bool, threads: int):
    """Denoiser's default options (R3 as the method says): the shipped weights, or seeded random ones."""
    options = InferenceOptions(r3=method.r3)
    if trained:
        denoiser = Denoiser.from_pretrained(method.model, options=options)
    else:
        torch.manual_seed(0)
        denoiser = Denoiser(build_model(method.arch), options)

    def windows(h: int, w: int) -> int:
        """Pixels the network processes for an h x w image: its tiles with their overlaps."""
        rows, cols = plan_tiles(denoiser.model, h, w, options.tile, options.overlap)
        return sum(r[1] - r[0] for r in rows) * sum(c[1] - c[0] for c in cols)

    return denoiser, windows


def _opencv(method: Method, trained: bool, threads: int):
    import cv2

    cv2.setNumThreads(threads)

    def run(rgb: np.ndarray) -> np.ndarray:
        bgr = np.ascontiguousarray(rgb[..., ::-1])  # OpenCV's channel order: its Lab conversion depends on it
        out = cv2.fastNlMeansDenoisingColored(bgr, None, h=10, hColor=10, templateWindowSize=7, searchWindowSize=21)
        return out[..., ::-1]

    return run, _pixels


def _bm3d(method: Method, trained: bool, threads: int):
    import bm3d
    from skimage.restoration import estimate_sigma

    def run(rgb: np.ndarray) -> np.ndarray:
        x = rgb / 255.0
        sigma = float(np.mean(estimate_sigma(x, channel_axis=-1)))
        return to_uint8(bm3d.bm3d_rgb(x, sigma) * 255.0)

    return run, _pixels


def _oidn(method: Method, trained: bool, threads: int):
    import pyoidn

    device = pyoidn.Device()
    device.set_int("numThreads", threads)
    device.commit()

    def run(rgb: np.ndarray) -> np.ndarray:
        color = rgb.astype(np.float32) / 255.0
        out = np.empty_like(color)
        flt = pyoidn.Filter(device, pyoidn.OIDN_FILTER_TYPE_RT)
        try:
            flt.set_image(pyoidn.OIDN_IMAGE_COLOR, color, pyoidn.OIDN_FORMAT_FLOAT3)
            flt.set_image(pyoidn.OIDN_IMAGE_OUTPUT, out, pyoidn.OIDN_FORMAT_FLOAT3)
            flt.set_bool("hdr", False)
            flt.set_bool("cleanAux", False)
            flt.set_bool("srgb", True)
            flt.set_quality(pyoidn.OIDN_QUALITY_FAST)
            flt.commit()
            flt.execute()
            error = device.get_error()
        finally:
            flt.release()
        if error:  # OIDN reports through the device, not by raising
            raise RuntimeError(f"OIDN: {error}")
        return to_uint8(out * 255.0)

    return run, _pixels


_BUILDERS = {"network": _network, "opencv": _opencv, "bm3d": _bm3d, "oidn": _oidn}


def build(method: Method, trained: bool, threads: int):
    """(denoise, work): uint8 RGB -> uint8 RGB as `method`'s users run it, and the work it does for an
    h x w image (pixels, or for networks the pixels of their tiles with overlaps)."""
    return _BUILDERS[method.kind](method, trained, threads)


def measure_method(method: Method, trained: bool, photo: str, crop: int, images: dict[str, tuple[str, list[str]]],
                   image_crop: int | None, threads: int) -> dict:
    """Time `method` on the photo (or its centre crop), with the peak memory of that; then, where its
    weights are trained or it has none, its mean PSNR per subset on `images` ({subset: (folder, names)})."""
    torch.set_num_threads(threads)
    built = guarded(lambda: {"method": build(method, trained, threads)})
    if "error" in built:
        return built
    denoise, work = built["method"]
    result = guarded(lambda: _time(denoise, work, read_rgb(photo), crop if method.on_crop else None))
    if "error" not in result and (trained or method.kind != "network"):
        result.update(guarded(lambda: {"psnr": _psnr(denoise, images, image_crop)}))
    return result


def _time(denoise, work, photo: np.ndarray, crop: int | None) -> dict:
    """One timed call after a small untimed one (decoding not timed: every method gets the same pixels).

    The untimed call pays the one-off costs (library and weight loading, oneDNN's kernel choice), which
    belong to no megapixel.
    """
    denoise(centre_crop(photo, WARMUP_SIDE))
    timed = centre_crop(photo, crop)
    start = time.perf_counter()
    denoise(timed)
    return dict(seconds=time.perf_counter() - start, size=f"{timed.shape[1]}x{timed.shape[0]}",
                photo_work_ratio=work(*photo.shape[:2]) / work(*timed.shape[:2]), peak_mb=peak_rss_mb())


def _psnr(denoise, images: dict[str, tuple[str, list[str]]], side: int | None) -> dict[str, float]:
    means = {}
    for subset, (folder, names) in images.items():
        samples = {s.name: s for s in discover(Path(folder))}
        values = [psnr(denoise(centre_crop(samples[n].noisy(), side)), centre_crop(samples[n].clean(), side))
                  for n in names]
        means[subset] = float(np.mean(values))
    return means


def run_command(argv: list[str], threads: int) -> dict:
    """`argv` as a child process limited to `threads` threads: its wall time and peak resident memory.

    Run inside a worker of its own, whose only child it is, so RUSAGE_CHILDREN is that child's peak.
    """
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    result = {"seconds": time.perf_counter() - start, "peak_mb": peak_rss_mb(resource.RUSAGE_CHILDREN)}
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        result["error"] = f"exit status {done.returncode}: {last}"
    return result
