"""Running the plan: every case in a fresh process, then rows, ratios, training speed and a summary."""

import logging
import math
import multiprocessing
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path

import torch

from ..precision import native_bf16
from ..train.config import TrainConfig
from . import cases
from .cases import Case
from .macs import count_macs, count_tiles
from .plan import (
    DEFAULT_PHOTO_MODELS,
    DEFAULT_PLAN,
    DEFAULT_R3_MODELS,
    LONG_RUN_S,
    MATMUL_N,
    MODELS,
    PHOTO,
    QUICK_FULL_MODEL,
    QUICK_SIZE,
    QUICK_TRAIN,
    R3_MAX_SIZE,
    RATIO_TILE,
    REFERENCE_MAX_PIXELS,
    SIZES,
    SUMMARY_MODEL,
    TRAIN_BATCH,
    TRAIN_PRECISIONS,
)
from .report import fmt

log = logging.getLogger(__name__)

WEIGHTS = "random (timing only)"
DEFINITIONS = {
    "seconds": "median wall time of `runs` timed calls, after one warm-up call where `warmup` is true "
               f"(a warm-up over {LONG_RUN_S:.0f} s is itself the one timed run)",
    "peak_mb": "peak resident memory of the process that ran only this case (machine.baseline_rss_mb of it "
               "is the idle process); peak_gpu_mb: torch.cuda.max_memory_allocated",
    "macs_per_pixel": "multiply-adds of the timed call (all tiles, R3 passes, padding) per image pixel, "
                      "counted by torch's FLOP counter",
    "efficiency": "macs_per_pixel * pixels * 2 / seconds / (machine.matmul_gflops * 1e9)",
    "speedup, memory_ratio": "reference / ours, same model, size and R3",
    "extrapolated": "R3-on time of the photo = its R3-off time x R3 on/off measured on one tile",
    "training": "one step of `lgbpn train` (channels-last, Adam): *_bf16 under bfloat16 autocast with float32 "
                "weights, as --precision bf16; native_bf16: whether the device has bf16 units (without them "
                "bf16 is emulated, and slower than float32)",
}


def run_isolated(fn, *args) -> dict:
    """fn(*args) in a fresh process; a process killed by the OS (out of memory) becomes an error."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([cases.__name__])  # torch is imported once, not per case
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        try:
            return pool.submit(fn, *args).result()
        except BrokenProcessPool:
            return {"error": "worker process died (killed for memory?)", "peak_mb": None}


def _isolated(case: Case, device: str, threads: int) -> dict:
    return run_isolated(cases.measure, case, device, threads)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(threads: int, device: str = "cpu") -> dict:
    return dict(cpu=_cpu_model(), threads=threads, cores=os.cpu_count(), torch=torch.__version__,
                python=platform.python_version(), device=device)


def _row(case: Case, result: dict, macs: int) -> dict:
    pixels = case.height * case.width
    seconds = result.get("seconds")
    row = dict(model=case.model, path=case.path, size=f"{case.width}x{case.height}", pixels=pixels, r3=case.r3,
               seconds=seconds, peak_mb=result.get("peak_mb"), macs_per_pixel=macs / pixels,
               runs=result.get("runs", 0), warmup=case.warmup)
    if case.path == "ours":
        row["tiles"] = count_tiles(case.model, case.height, case.width)
    for key in ("peak_gpu_mb", "error"):
        if key in result:
            row[key] = result[key]
    return row


def run_benchmark(
    quick: bool = False,
    device: str = "cpu",
    sizes: list[int] | None = None,
    models: list[str] | None = None,
    repeats: int | None = None,
    threads: int | None = None,
    photo: bool | None = None,
) -> dict:
    """Run the benchmark; returns {machine, quick, definitions, rows, training, summary}.

    Progress goes to this module's logger, one line per case. Cases run in worker processes that
    import the main module: a script calling this needs the usual `if __name__ == "__main__":` guard.
    """
    threads = threads or torch.get_num_threads()
    planned = not (quick or sizes or models)  # the default ~10-minute plan (see plan.DEFAULT_PLAN)
    sizes = sorted(sizes or ([QUICK_SIZE] if quick else SIZES))
    models = list(models or MODELS)
    repeats = repeats or (1 if quick else 3)
    photo = not quick if photo is None else photo
    started = time.perf_counter()

    def measure(case: Case) -> dict:
        start = time.perf_counter()
        result = _isolated(case, device, threads)
        outcome = result.get("error") or f"peak {fmt(result['peak_mb'], '.0f')} MB"
        log.info("  %s: %.1f s, %s", case.describe(), time.perf_counter() - start, outcome)
        return result

    matmul_case = Case("matmul", repeats=3 if quick else 5)
    matmul = measure(matmul_case)
    if "error" in matmul:  # then every case would fail the same way
        raise RuntimeError(f"benchmark worker process failed: {matmul['error']}")
    machine = dict(machine_info(threads, device),
                   matmul=f"float32 {MATMUL_N}x{MATMUL_N} torch.mm, best of {3 if quick else 5}, "
                          "measured before and after the cases, the higher kept",
                   baseline_rss_mb=measure(Case("idle"))["peak_mb"], dtype="float32", weights=WEIGHTS)
    if device == "cuda":
        machine["gpu"] = torch.cuda.get_device_name()

    rows, ours_outputs, reference_peaks = [], {}, {}
    for size in sizes:
        for name in models:
            if planned and size not in DEFAULT_PLAN[name]:
                continue
            base = Case("infer", name, height=size, width=size, repeats=repeats, warmup=not quick,
                        keep_output=size == sizes[0])
            for r3 in (False, True):
                if r3 and quick and name != QUICK_FULL_MODEL:
                    continue
                if r3 and planned and (name not in DEFAULT_R3_MODELS or size > R3_MAX_SIZE):
                    continue
                case = replace(base, r3=r3, keep_output=base.keep_output and not r3)
                result = measure(case)
                if result.get("output") is not None:
                    ours_outputs[name] = result["output"]
                rows.append(_row(case, result, count_macs(case)))
            case = replace(base, path="reference", warmup=False, repeats=1)
            if size * size <= REFERENCE_MAX_PIXELS:
                result = measure(case)
                row = _row(case, result, count_macs(case))
                if result.get("seconds"):
                    reference_peaks[name] = (size * size, result["peak_mb"])
                if result.get("output") is not None and name in ours_outputs:
                    row["max_abs_diff"] = (result["output"] - ours_outputs[name]).abs().max().item()
            else:
                row = _row(case, {}, count_macs(case))
                row["note"] = _reference_note(reference_peaks.get(name), size * size, machine["baseline_rss_mb"])
            rows.append(row)
    if photo:
        rows += _photo_rows(list(DEFAULT_PHOTO_MODELS) if planned else models, repeats, measure)
    _add_ratios(rows)

    training = []
    for name in [QUICK_FULL_MODEL] if quick and QUICK_FULL_MODEL in models else models:
        crop, batch = QUICK_TRAIN if quick else (TrainConfig.crop, TRAIN_BATCH.get(name, TrainConfig.batch))
        case = Case("train", name, height=crop, width=crop, batch=batch, repeats=repeats, warmup=not quick)
        results = {precision: measure(replace(case, precision=precision)) for precision in TRAIN_PRECISIONS}
        training.append(_training_row(case, results, count_macs(case), native_bf16(device)))

    # A shared machine's matmul rate drifts over a run: the higher of two measurements is the
    # conservative reference for efficiency.
    machine["matmul_gflops"] = max(matmul["gflops"], measure(matmul_case).get("gflops", 0.0))
    for row in rows:
        row["efficiency"] = (row["macs_per_pixel"] * row["pixels"] * 2 / row["seconds"]
                             / (machine["matmul_gflops"] * 1e9) if row["seconds"] else None)
    summary = _summary(rows, models, sizes)
    summary["wall_seconds"] = time.perf_counter() - started
    return dict(machine=machine, quick=quick, definitions=DEFINITIONS, rows=rows, training=training,
                summary=summary)


def _training_row(case: Case, results: dict[str, dict], macs: int, native: bool) -> dict:
    """One model's training speed: the float32 figures as they are, the others with the precision appended."""
    row = dict(model=case.model, crop=case.width, batch=case.batch,
               macs_per_pixel=macs / (case.batch * case.height * case.width), native_bf16=native)
    for precision, result in results.items():
        suffix = "" if precision == "fp32" else f"_{precision}"
        seconds = result.get("seconds")
        row.update({f"seconds_per_step{suffix}": seconds,
                    f"crops_per_s{suffix}": case.batch / seconds if seconds else None,
                    f"peak_mb{suffix}": result.get("peak_mb"), f"runs{suffix}": result.get("runs", 0)})
        if "error" in result:
            row[f"error{suffix}"] = result["error"]
    return row


def _reference_note(measured, pixels: int, baseline_mb: float) -> str:
    if measured is None:
        return "not run: the reference path needs ~4x the memory per 4x pixels (6.8 GB at 256x256)"
    measured_pixels, peak_mb = measured
    estimate = baseline_mb + (peak_mb - baseline_mb) * pixels / measured_pixels
    side = math.isqrt(measured_pixels)
    return (f"not run: the reference path needs ~{estimate / 1024:.0f} GB here "
            f"(estimated from its {side}x{side} peak, memory growing with pixels)")


def _photo_rows(models: list[str], repeats: int, measure) -> list[dict]:
    """The 12 MP photo, tiled, R3 off; R3 on extrapolated from R3 on / off on one tile.

    The R3-on row's time and multiply-adds are the R3-off ones times the ratios measured and counted
    on one RATIO_TILE tile (counting R3 over the whole photo costs minutes even on meta tensors).
    """
    rows = []
    height, width = PHOTO
    for name in models:
        case = Case("infer", name, height=height, width=width, warmup=False, repeats=1, progress=True)
        off = _row(case, measure(case), count_macs(case))
        tile = Case("infer", name, height=RATIO_TILE, width=RATIO_TILE)
        macs_ratio = count_macs(replace(tile, r3=True)) / count_macs(tile)
        ratio = measure(replace(tile, kind="r3_ratio", repeats=repeats)).get("ratio")
        on = _row(replace(case, r3=True), {}, round(off["macs_per_pixel"] * macs_ratio * height * width))
        on["extrapolated"] = True
        if off["seconds"] and ratio:
            on["seconds"] = off["seconds"] * ratio
        on["note"] = (f"extrapolated: R3-off time x {fmt(ratio, '.2f')} (R3 on / off measured on one "
                      f"{RATIO_TILE}x{RATIO_TILE} tile); peak memory not measured")
        rows += [off, on]
    return rows


def _add_ratios(rows: list[dict]) -> None:
    """speedup and memory_ratio (reference / ours) on our rows that have a measured reference row."""
    reference = {(r["model"], r["size"], r["r3"]): r for r in rows if r["path"] == "reference" and r["seconds"]}
    for row in rows:
        ref = reference.get((row["model"], row["size"], row["r3"]))
        if row["path"] == "ours" and ref and row["seconds"]:
            row["speedup"] = ref["seconds"] / row["seconds"]
            row["memory_ratio"] = ref["peak_mb"] / row["peak_mb"]


def _summary(rows: list[dict], models: list[str], sizes: list[int]) -> dict:
    model = SUMMARY_MODEL if SUMMARY_MODEL in models else models[0]
    size = 256 if 256 in sizes else sizes[0]
    label = f"{size}x{size}"
    ours = {(r["size"], r["r3"]): r for r in rows if r["model"] == model and r["path"] == "ours"}
    headline = ours.get((label, False), {})
    untiled = [r for r in rows if r["model"] == model and r["path"] == "ours" and not r["r3"]
               and r.get("tiles") == 1 and r["seconds"]]
    best = max(untiled, key=lambda r: r["pixels"], default={})
    diffs = [r["max_abs_diff"] for r in rows if "max_abs_diff" in r]
    per_pass = {}
    for name in models:
        case = Case("infer", name, height=size, width=size)
        per_pass[name] = {stage: count_macs(case, stage) / size**2 for stage in ("test", "refine")}
    return dict(model=model, preset="sidd", size=label, speedup_256=headline.get("speedup"),
                memory_ratio_256=headline.get("memory_ratio"), efficiency=best.get("efficiency"),
                efficiency_size=best.get("size"), max_abs_diff_vs_reference=max(diffs, default=None),
                macs_per_pixel_per_pass=per_pass)
