"""`lgbpn bench --compare`: our networks beside what a user would pick instead, in one run.

Every method is timed on the same photo in a process of its own (peak memory as the other cases),
then scored on the same images; `lgbpn denoise` is timed end to end on that photo, as a user runs it.
"""

import importlib.util
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..data.formats import centre_crop, discover
from ..denoiser import DEFAULT_MODEL, pretrained_names
from ..metrics import psnr
from ..models import build_model
from ..precision import resolve_precision
from ..tilewise import spread_indices
from ..weights import save_weights
from . import alternatives, cases
from .cases import Case
from .harness import machine_info, run_isolated
from .plan import (
    COMPARE_METHODS,
    COMPARE_SUBSETS,
    FOLDER_PHOTOS,
    STUDENT,
    TARGET_PEAK_MB,
    ComparePlan,
    Method,
)
from .report import fmt

log = logging.getLogger(__name__)

PHOTO_SUBSET = "polyu"  # real camera noise at photo resolution (a Canon 5D crop), as a photographer's JPEG
JPEG_QUALITY = 95
DEFINITIONS = {
    "seconds_per_mp": "photo_seconds / the photo's megapixels",
    "photo_seconds": "one timed call on the photo's decoded pixels (decoding not timed); for `extrapolated` "
                     "rows, the time on the photo's centre crop x photo_work_ratio",
    "photo_work_ratio": "the photo's work / the timed image's: pixels, or for networks the pixels of their "
                        "tiles with overlaps (the tiles lgbpn would cut the photo into)",
    "peak_mb": "peak resident memory of the process that ran only this method, in the timed call (on the crop for "
               "extrapolated rows); it includes machine.baseline_rss_mb, the idle process with torch loaded",
    "psnr": "mean per-image PSNR (lgbpn.metrics: uint8, data range 255) on compare.images; null where the "
            "weights are not trained",
    "pipeline": "whole processes, one run, `threads` threads: `lgbpn denoise` (default options, the student) and "
                "OpenCV's non-local means (cv2.imread, fastNlMeansDenoisingColored h 10/10, windows 7/21, cv2.imwrite) on "
                "the photo as PNG (png) and on a folder of FOLDER_PHOTOS such photos as JPEG (folder); ratio = ours / "
                "OpenCV's seconds. stages: one photo's seconds per stage in a process of its own (start_up: a fresh "
                "Python importing what `lgbpn denoise` imports; conversions: the denoiser's call less network and "
                "corrections)",
    "target": "`lgbpn denoise` on the photo JPEG in a child process limited to `threads` threads (OMP_NUM_THREADS): "
              "start-up, decoding, denoising and encoding; peak_mb is that process's peak resident memory",
}


def spread(names: list[str], count: int | None) -> list[str]:
    """`count` names spread evenly over the sorted list, first and last included; None: all."""
    names = sorted(names)
    return names if count is None else [names[i] for i in spread_indices(len(names), count)]


def _images(data: Path, count: int | None) -> dict[str, tuple[str, list[str]]]:
    """{subset: (folder, names)} of the subsets of `data` that are there, clean references only."""
    found = {}
    for subset, folder in COMPARE_SUBSETS.items():
        if (data / folder).is_dir():
            names = [s.name for s in discover(data / folder) if s.clean is not None]
            if names:
                found[subset] = (str(data / folder), spread(names, count))
    if not found:
        raise FileNotFoundError(f"{data}: none of {', '.join(COMPARE_SUBSETS.values())} with clean references "
                                "(`lgbpn bench --compare --data DIR`)")
    return found


def _photo(images: dict, plan: ComparePlan, folder: Path, index: int = 0, name: str = "photo.jpg") -> tuple[Path, str]:
    """The photo JPEG: the first (or `index`th) noisy image of PHOTO_SUBSET (else of the first subset), mirror-tiled."""
    subset = PHOTO_SUBSET if PHOTO_SUBSET in images else next(iter(images))
    samples = discover(Path(images[subset][0]))
    sample = samples[index % len(samples)]
    height, width = plan.photo
    pixels = sample.noisy()[:height, :width]
    pixels = np.pad(pixels, ((0, height - pixels.shape[0]), (0, width - pixels.shape[1]), (0, 0)), mode="symmetric")
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, quality=JPEG_QUALITY)
    return path, (f"{COMPARE_SUBSETS[subset]}/noisy/{sample.name} mirror-tiled to {width}x{height}, "
                  f"JPEG quality {JPEG_QUALITY}")


def _installed(module: str) -> bool:
    return not module or importlib.util.find_spec(module) is not None


def _method_row(method: Method, shipped: set[str], measured: dict | None, megapixels: float) -> dict:
    trained = method.model in shipped
    row = dict(method=method.name, settings=method.settings, installed=measured is not None,
               weights=None, extrapolated=method.on_crop, timed_size=None, timed_seconds=None,
               photo_work_ratio=None, photo_seconds=None, seconds_per_mp=None, peak_mb=None,
               psnr={subset: None for subset in COMPARE_SUBSETS})
    notes = []
    if method.kind == "network":
        row["weights"] = f"shipped {method.model}" if trained else f"random {method.arch} (timing only)"
        if not trained:
            notes.append(f"{method.model} is not shipped: timed with random weights, no PSNR")
    if measured is None:
        notes.append(f"not installed (pip install {method.package}, or lgbpn[bench])")
    else:
        row.update(timed_size=measured.get("size"), timed_seconds=measured.get("seconds"),
                   photo_work_ratio=measured.get("photo_work_ratio"), peak_mb=measured.get("peak_mb"))
        row["psnr"].update(measured.get("psnr", {}))
        if row["timed_seconds"] is not None:
            row["photo_seconds"] = row["timed_seconds"] * row["photo_work_ratio"]
            row["seconds_per_mp"] = row["photo_seconds"] / megapixels
        if method.on_crop and row["timed_size"]:
            notes.append(f"timed on the {row['timed_size']} centre crop and extrapolated; peak on the crop")
        if "error" in measured:
            row["error"] = measured["error"]
            notes.append(measured["error"])
    row["note"] = "; ".join(notes)
    return row


def _student_args(shipped: set[str], folder: Path) -> tuple[list[str], str]:
    """`lgbpn denoise` arguments that select the student, and its weights in words."""
    if STUDENT in shipped:
        return ([] if DEFAULT_MODEL == STUDENT else ["--model", STUDENT]), f"shipped {STUDENT}"
    arch = next(m.arch for m in COMPARE_METHODS if m.model == STUDENT)
    torch.manual_seed(0)
    path = folder / f"{arch}-random.safetensors"
    save_weights(build_model(arch), path)
    return ["--weights", str(path)], f"random {arch} ({STUDENT} is not shipped; the time does not depend on weights)"


def _target(photo: Path, folder: Path, shipped: set[str], threads: int, opencv_seconds: float | None,
            megapixels: float, default_precision: str) -> dict:
    """`lgbpn denoise` on the photo, end to end, with the student: fp32, and bf16 where `--precision auto`
    (`default_precision`, what `lgbpn denoise` runs here) picks it, as on CPUs with bf16 units."""
    target = dict(default_model=DEFAULT_MODEL, threads=threads, precision=default_precision)
    if DEFAULT_MODEL != STUDENT:
        target["note"] = (f"the default model is still {DEFAULT_MODEL} (R3 on: see the teacher+r3 row); "
                          f"timed: the student, the default to be as {STUDENT}")
    try:
        args, target["weights"] = _student_args(shipped, folder)
    except Exception as exc:  # e.g. an unregistered student architecture: the target fails, not the run
        target["error"] = f"{type(exc).__name__}: {exc}"
        return target
    target["command"] = " ".join(["lgbpn denoise photo.jpg -o out.jpg", *(Path(a).name for a in args)])
    command = [sys.executable, "-m", "lgbpn", "denoise", str(photo), "-o", str(folder / "out.jpg"), *args]
    for precision in ("fp32", "bf16"):
        if precision == "bf16" and default_precision != "bf16":
            target[precision] = {"note": "not run: this CPU has no bf16 units (emulated bf16 is slower than fp32)"}
            continue
        start = time.perf_counter()
        result = run_isolated(alternatives.run_command, [*command, "--precision", precision], threads)
        log.info("  lgbpn denoise --precision %s: %.1f s, %s", precision, time.perf_counter() - start,
                 result.get("error") or f"peak {fmt(result['peak_mb'], '.0f')} MB")
        if "error" not in result:
            result["seconds_per_mp"] = result["seconds"] / megapixels
        target[precision] = result
    timed = target[default_precision]
    seconds = None if "error" in timed else timed.get("seconds")  # None where that run failed or did not run
    target["opencv_seconds"] = opencv_seconds
    target["no_slower_than_opencv"] = None if None in (seconds, opencv_seconds) else seconds <= opencv_seconds
    target["peak_under_2gb"] = None if seconds is None else timed["peak_mb"] < TARGET_PEAK_MB
    return target


_OPENCV_LOOP = """import sys, cv2
cv2.setNumThreads(int(sys.argv[1]))
for source, target in zip(sys.argv[2::2], sys.argv[3::2]):
    bgr = cv2.fastNlMeansDenoisingColored(cv2.imread(source), None, h=10, hColor=10, templateWindowSize=7, searchWindowSize=21)
    cv2.imwrite(target, bgr)
"""


def stage_seconds(photo: str, output: str, args: list[str], threads: int) -> dict:
    """One photo through `lgbpn denoise`'s stages with the student of `args` (_student_args), each timed (run
    in a process of its own)."""
    from ..denoiser import Denoiser
    from ..io import read_image, write_image

    torch.set_num_threads(threads)
    if args[:1] == ["--weights"]:
        denoiser = Denoiser.from_weights(args[1])
    else:
        denoiser = Denoiser.from_pretrained(args[1] if args else DEFAULT_MODEL)
    denoiser.denoise_pixels(np.zeros((64, 64, 3), np.uint8))  # warm-up, not timed
    denoiser.stage_seconds.clear()
    start = time.perf_counter()
    image = read_image(photo)
    decoded = time.perf_counter()
    image.pixels = denoiser.denoise_pixels(image.pixels)
    denoised = time.perf_counter()
    write_image(output, image)
    stages = dict(decode=decoded - start, **denoiser.stage_seconds, encode=time.perf_counter() - denoised)
    stages["conversions"] = denoised - decoded - stages["network"] - stages["corrections"]
    return {name: round(seconds, 3) for name, seconds in stages.items()}


def _side_by_side(ours: list[str], sources: list[Path], targets: list[Path], threads: int) -> dict:
    """`lgbpn denoise` and OpenCV's loop over the same files, whole processes, one run each."""
    result = {"files": len(sources)}
    for name, argv in (("ours", ours),
                       ("opencv", [sys.executable, "-c", _OPENCV_LOOP, str(threads),
                                   *(str(p) for pair in zip(sources, targets) for p in pair)])):
        run = run_isolated(alternatives.run_command, argv, threads)
        result[name] = {key: run.get(key) for key in ("seconds", "peak_mb", "error") if key in run}
    seconds = [result[name].get("seconds") for name in ("ours", "opencv")]
    errors = any("error" in result[name] for name in ("ours", "opencv"))
    result["ratio"] = None if errors or None in seconds else seconds[0] / seconds[1]
    return result


def _pipeline(images: dict, plan: ComparePlan, folder: Path, shipped: set[str], threads: int) -> dict:
    """The whole pipeline against OpenCV's: one photo as PNG, a folder of JPEG photos, and one photo's stages."""
    if not _installed("cv2"):
        return {"note": "not run: OpenCV is not installed (pip install opencv-python-headless, or lgbpn[bench])"}
    args, weights = _student_args(shipped, folder)
    lgbpn = [sys.executable, "-m", "lgbpn", "denoise"]
    photo = folder / "pipeline" / "photo.png"
    photo.parent.mkdir(parents=True, exist_ok=True)
    Image.open(_photo(images, plan, folder / "pipeline")[0]).save(photo)
    result = dict(weights=weights, threads=threads, photos=FOLDER_PHOTOS)
    png = [photo.with_name("ours.png"), photo.with_name("opencv.png")]
    result["png"] = _side_by_side([*lgbpn, str(photo), "-o", str(png[0]), *args], [photo], [png[1]], threads)
    log.info("  pipeline, one PNG: ours / OpenCV %s", fmt(result["png"]["ratio"], ".2f"))
    photos = [_photo(images, plan, folder / "pipeline" / "photos", i, f"{i:02d}.jpg")[0] for i in range(FOLDER_PHOTOS)]
    targets = [folder / "pipeline" / "opencv" / p.name for p in photos]
    targets[0].parent.mkdir()
    result["folder"] = _side_by_side([*lgbpn, str(photos[0].parent), "-o", str(folder / "pipeline" / "ours"), *args],
                                     photos, targets, threads)
    log.info("  pipeline, a folder of %d JPEGs: ours / OpenCV %s", FOLDER_PHOTOS, fmt(result["folder"]["ratio"], ".2f"))
    start_up = run_isolated(alternatives.run_command, [sys.executable, "-c", "import lgbpn.cli, lgbpn.batch, lgbpn.denoiser"],
                            threads)
    try:
        stages = run_isolated(stage_seconds, str(photo), str(photo.with_name("stages.png")), args, threads)
    except Exception as exc:  # a failed breakdown must not cost the comparison
        stages = {"error": f"{type(exc).__name__}: {exc}"}
    result["stages"] = dict(start_up=round(start_up["seconds"], 3), **stages)
    return result


def run_compare(plan: ComparePlan, data: Path, threads: int, quick: bool = False) -> dict:
    """Run the comparison; returns {machine, quick, definitions, compare}.

    Progress goes to this module's logger. Cases run in worker processes: a script calling this
    needs the usual `if __name__ == "__main__":` guard.
    """
    started, load_before = time.perf_counter(), os.getloadavg()
    chosen = _images(Path(data), plan.images)
    shipped = set(pretrained_names())
    default_precision = resolve_precision("auto")  # the one detection of bf16 units in this run
    baseline = run_isolated(cases.measure, Case("idle"), "cpu", threads)["peak_mb"]
    with tempfile.TemporaryDirectory(prefix="lgbpn-compare-") as tmp:
        photo, source = _photo(chosen, plan, Path(tmp))
        megapixels = plan.photo[0] * plan.photo[1] / 1e6
        rows = []
        for method in COMPARE_METHODS:
            measured = None
            if _installed(method.module):
                start = time.perf_counter()
                measured = run_isolated(alternatives.measure_method, method, method.model in shipped, str(photo),
                                        plan.crop, chosen, plan.image_crop, threads)
                log.info("  %s: %.1f s, %s", method.name, time.perf_counter() - start,
                         measured.get("error") or f"peak {fmt(measured.get('peak_mb'), '.0f')} MB")
            rows.append(_method_row(method, shipped, measured, megapixels))
        opencv = next((r["photo_seconds"] for r in rows if r["method"] == "opencv-nlm"), None)
        target = _target(photo, Path(tmp), shipped, threads, opencv, megapixels, default_precision)
        # Process start-ups dominate on quick's tiny photo: the pipeline is timed on the real one only.
        pipeline = {"note": "not run in a quick run"} if quick else _pipeline(chosen, plan, Path(tmp), shipped, threads)
    noisy = {subset: float(np.mean([psnr(centre_crop(s.noisy(), plan.image_crop),
                                         centre_crop(s.clean(), plan.image_crop))
                                    for s in discover(Path(folder)) if s.name in names]))
             for subset, (folder, names) in chosen.items()}
    machine = dict(machine_info(threads), native_bf16=default_precision == "bf16", baseline_rss_mb=baseline,
                   load_average=[round(load_before[0], 2), round(os.getloadavg()[0], 2)])
    compare = dict(photo=dict(source=source, size=f"{plan.photo[1]}x{plan.photo[0]}", megapixels=megapixels,
                              crop=f"{plan.crop}x{plan.crop}"),
                   images={subset: names for subset, (_, names) in chosen.items()},
                   image_crop=plan.image_crop, noisy_psnr=noisy, rows=rows, target=target, pipeline=pipeline,
                   wall_seconds=time.perf_counter() - started)
    return dict(machine=machine, quick=quick, definitions=DEFINITIONS, compare=compare)
