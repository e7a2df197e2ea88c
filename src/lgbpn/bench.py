"""`lgbpn bench`: time, peak memory and arithmetic efficiency of our inference path against the
reference's test path (same weights), for LG-BPN and AP-BSN, on one machine in one run.

Every measured case runs in a process of its own, forked from a server that has imported torch and
this module and done nothing else, so the peak resident memory a row reports is that case's alone
(it includes the ~torch baseline, reported as `machine.baseline_rss_mb`). Multiply-adds are counted
with torch's FLOP counter on meta tensors: counting costs no arithmetic, and it counts exactly the
work the timed call does (tile overlaps, PD padding, the reference's quadrant overlaps included).
Weights are random and seeded: the time a network takes does not depend on its weights.
The reference path runs with R3 off only (R3 repeats the same kind of pass eight more times), and
not above 256x256, where it needs more memory than a 24 GiB machine has.
"""

import json
import math
import multiprocessing
import os
import platform
import resource
import statistics
import time
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from unittest import mock

import click
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from . import reference_path, tiling
from .io import atomic_write_bytes
from .models import ARCHITECTURES, build_model
from .reference_path import reference_test_path
from .tiling import denoise_tiled, plan_tiles, prepare_for_inference
from .train.config import TrainConfig

MODELS = ("lgbpn", "lgbpn-s", "apbsn")
SIZES = (256, 512, 1024)
# The default run must end in ~10 minutes on 2 cores. The full-size networks (~5M multiply-adds per
# pixel, R3 9x that) run at 256x256 with R3 off; the shipped slim model covers every size and the
# photo; R3 on is measured up to R3_MAX_SIZE and extrapolated (labelled) above. `--models`/`--sizes`
# given explicitly run the whole matrix.
DEFAULT_PLAN = {"lgbpn": (256,), "apbsn": (256,), "lgbpn-s": SIZES}
DEFAULT_R3_MODELS = ("lgbpn-s",)
DEFAULT_PHOTO_MODELS = ("lgbpn-s",)
R3_MAX_SIZE = 256
# One training step at the default crop; batch 1 for the full-size networks (~2 min a step at batch 8).
TRAIN_BATCH = {"lgbpn": 1, "apbsn": 1}
PHOTO = (3000, 4000)  # (H, W): a 12-megapixel photo
QUICK_SIZE = 40  # above LG-BPN's smallest test size (32), which the reference path needs
QUICK_FULL_MODEL = "lgbpn-s"  # quick mode runs R3 (~9 passes) and training for this model only
QUICK_TRAIN = (40, 1)  # crop, batch
SUMMARY_MODEL = "lgbpn"
# The reference path needs ~6.8 GB at 256x256 and 4x that per 4x pixels (beyond 24 GiB at 512x512):
# it is not run on larger images, whose rows carry an estimate instead.
REFERENCE_MAX_PIXELS = 256 * 256
RATIO_TILE = 256  # the tile on which R3-on / R3-off is measured to extrapolate the photo's R3 time
MATMUL_N = 2048
LONG_RUN_S = 20.0  # a warm-up longer than this is the one timed run: medians of minutes help nobody
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
}


@dataclass(frozen=True)
class Case:
    """One measurement, run in its own process."""

    kind: str  # infer | r3_ratio | train | matmul | idle
    model: str = ""
    path: str = "ours"  # ours | reference
    height: int = 0
    width: int = 0
    r3: bool = False
    batch: int = 1
    repeats: int = 1
    warmup: bool = True
    keep_output: bool = False
    progress: bool = False

    def describe(self) -> str:
        size = f"{self.width}x{self.height}"
        if self.kind == "infer":
            return f"{self.model} {self.path} {size} R3 {'on' if self.r3 else 'off'}"
        if self.kind == "train":
            return f"{self.model} training step, batch {self.batch} of {size}"
        if self.kind == "r3_ratio":
            return f"{self.model} R3 on/off on one {size} tile"
        return self.kind


# ------------------------------------------------------------------------- inside the case's process


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, case: Case, device: torch.device):
    """(median seconds, number of timed runs, last output) of `fn` after an optional warm-up."""
    repeats = case.repeats
    if case.warmup:
        start = time.perf_counter()
        out = fn()
        _sync(device)
        seconds = time.perf_counter() - start
        if seconds > LONG_RUN_S:  # first-call overheads are milliseconds: this run is the measurement
            return seconds, 1, out
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(times), out


def _model(name: str, device) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, preset="sidd").to(device).eval()


def _image(case: Case, device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return (torch.rand(case.batch, 3, case.height, case.width, generator=generator) * 255).to(device)


def _reference(model, x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    with torch.no_grad(), reference_test_path(model):  # no_grad: what the reference's test loop uses
        return model(model.pad_for_inference(x), stage="test")[..., :h, :w]


def _infer(case: Case, device) -> dict:
    model, x = _model(case.model, device), _image(case, device)
    if case.path == "reference":
        fn = lambda: _reference(model, x)  # noqa: E731
    else:
        prepare_for_inference(model, device)
        fn = lambda: denoise_tiled(model, x, r3=case.r3, progress=case.progress)  # noqa: E731
    seconds, runs, out = _timed(fn, case, device)
    return {"seconds": seconds, "runs": runs, "output": out.cpu() if case.keep_output else None}


def _r3_ratio(case: Case, device) -> dict:
    model, x = prepare_for_inference(_model(case.model, device), device), _image(case, device)
    one_tile = max(case.height, case.width) + model.alignment()
    off, _, _ = _timed(lambda: denoise_tiled(model, x, r3=False, tile=one_tile), case, device)
    on, _, _ = _timed(lambda: denoise_tiled(model, x, r3=True, tile=one_tile), case, device)
    return {"ratio": on / off}


def _train(case: Case, device) -> dict:
    model, x = _model(case.model, device).train(), _image(case, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=TrainConfig.lr)

    def step():
        loss = F.l1_loss(model(x, stage="train"), x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    seconds, runs, _ = _timed(step, case, device)
    return {"seconds": seconds, "runs": runs}


def _matmul(case: Case, device) -> dict:
    a, b = torch.rand(MATMUL_N, MATMUL_N, device=device), torch.rand(MATMUL_N, MATMUL_N, device=device)
    torch.mm(a, b)
    best = math.inf
    for _ in range(case.repeats):
        _sync(device)
        start = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return {"gflops": 2 * MATMUL_N**3 / best / 1e9}


_KINDS = {"infer": _infer, "r3_ratio": _r3_ratio, "train": _train, "matmul": _matmul, "idle": lambda case, device: {}}


def _measure(case: Case, device: str, threads: int) -> dict:
    torch.set_num_threads(threads)
    device = torch.device(device)
    try:
        result = _KINDS[case.kind](case, device)
    except (MemoryError, torch.OutOfMemoryError):
        result = {"error": "out of memory"}
    except Exception as exc:  # one failing case must not end a run that takes hours: it shows in its row
        result = {"error": f"{type(exc).__name__}: {exc}"}
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    if device.type == "cuda":
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return result


# ----------------------------------------------------------------------------------- the harness


def _isolated(case: Case, device: str, threads: int) -> dict:
    """Run `case` in a fresh process; a process killed by the OS (out of memory) becomes an error."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])  # torch is imported once, not per case
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        try:
            return pool.submit(_measure, case, device, threads).result()
        except BrokenProcessPool:
            return {"error": "worker process died (killed for memory?)", "peak_mb": None}


_META_MODELS: dict[str, torch.nn.Module] = {}


def _meta_model(name: str) -> torch.nn.Module:
    """The model on the meta device: shapes without storage, for counting."""
    if name not in _META_MODELS:
        _META_MODELS[name] = build_model(name, preset="sidd").to("meta")
    return _META_MODELS[name]


def _macs(case: Case, stage: str | None = None) -> int:
    """Multiply-adds of the work `case` times (or of one `stage` pass), counted on meta tensors."""
    model = _meta_model(case.model).train(case.kind == "train")
    x = torch.empty(case.batch, 3, case.height, case.width, device="meta")
    counter = FlopCounterMode(display=False)
    with counter, _shape_only_helpers():
        if stage is not None:
            with torch.no_grad():
                model(model.pad_for_inference(x), stage=stage)
        elif case.kind == "train":
            F.l1_loss(model(x, stage="train"), x).backward()
        elif case.path == "reference":
            _reference(model, x)
        else:
            denoise_tiled(model, x, r3=case.r3)
    return counter.get_total_flops() // 2


def _taps_shape(x: torch.Tensor, size: int, ratio: float) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.new_empty(b, c, h * size, w * size)


def _masks_shape(shape, passes, prob, seed, origin) -> torch.Tensor:
    return torch.empty(passes, *shape, dtype=torch.bool, device="meta")


@contextmanager
def _shape_only_helpers():
    """The reference's per-tap sampling and R3's mask drawing are elementwise work, which the FLOP
    counter does not count; shape-only stand-ins give the same count in milliseconds, not seconds."""
    with mock.patch.object(reference_path, "sample_taps", _taps_shape), \
            mock.patch.object(tiling, "r3_masks", _masks_shape):
        yield


def _tiles(model_name: str, height: int, width: int) -> int:
    """How many tiles denoise_tiled cuts an image into (its tile is rounded to the PD alignment)."""
    rows, cols = plan_tiles(_meta_model(model_name), height, width)
    return len(rows) * len(cols)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _row(case: Case, result: dict, macs: int) -> dict:
    pixels = case.height * case.width
    seconds = result.get("seconds")
    row = dict(model=case.model, path=case.path, size=f"{case.width}x{case.height}", pixels=pixels, r3=case.r3,
               seconds=seconds, peak_mb=result.get("peak_mb"), macs_per_pixel=macs / pixels,
               runs=result.get("runs", 0), warmup=case.warmup)
    if case.path == "ours":
        row["tiles"] = _tiles(case.model, case.height, case.width)
    for key in ("peak_gpu_mb", "error"):
        if key in result:
            row[key] = result[key]
    return row


def _log(message: str) -> None:
    click.echo(message, err=True)


def run_benchmark(
    quick: bool = False,
    device: str = "cpu",
    sizes: list[int] | None = None,
    models: list[str] | None = None,
    repeats: int | None = None,
    threads: int | None = None,
    photo: bool | None = None,
    log=_log,
) -> dict:
    """Run the benchmark; returns {machine, quick, definitions, rows, training, summary}.

    Cases run in worker processes that import the main module: a script calling this needs the
    usual `if __name__ == "__main__":` guard.
    """
    threads = threads or torch.get_num_threads()
    planned = not (quick or sizes or models)  # the default ~10-minute plan (see DEFAULT_PLAN)
    sizes = sorted(sizes or ([QUICK_SIZE] if quick else SIZES))
    models = list(models or MODELS)
    repeats = repeats or (1 if quick else 3)
    photo = not quick if photo is None else photo
    started = time.perf_counter()

    def measure(case: Case) -> dict:
        start = time.perf_counter()
        result = _isolated(case, device, threads)
        outcome = result.get("error") or f"peak {_fmt(result['peak_mb'], '.0f')} MB"
        log(f"  {case.describe()}: {time.perf_counter() - start:.1f} s, {outcome}")
        return result

    matmul_case = Case("matmul", repeats=3 if quick else 5)
    matmul = measure(matmul_case)
    if "error" in matmul:  # then every case would fail the same way
        raise RuntimeError(f"benchmark worker process failed: {matmul['error']}")
    machine = dict(cpu=_cpu_model(), threads=threads, cores=os.cpu_count(), torch=torch.__version__,
                   python=platform.python_version(), device=device,
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
                rows.append(_row(case, result, _macs(case)))
            case = replace(base, path="reference", warmup=False, repeats=1)
            if size * size <= REFERENCE_MAX_PIXELS:
                result = measure(case)
                row = _row(case, result, _macs(case))
                if result.get("seconds"):
                    reference_peaks[name] = (size * size, result["peak_mb"])
                if result.get("output") is not None and name in ours_outputs:
                    row["max_abs_diff"] = (result["output"] - ours_outputs[name]).abs().max().item()
            else:
                row = _row(case, {}, _macs(case))
                row["note"] = _reference_note(reference_peaks.get(name), size * size, machine["baseline_rss_mb"])
            rows.append(row)
    if photo:
        rows += _photo_rows(list(DEFAULT_PHOTO_MODELS) if planned else models, repeats, measure)
    _add_ratios(rows)

    training = []
    for name in [QUICK_FULL_MODEL] if quick and QUICK_FULL_MODEL in models else models:
        crop, batch = QUICK_TRAIN if quick else (TrainConfig.crop, TRAIN_BATCH.get(name, TrainConfig.batch))
        case = Case("train", name, height=crop, width=crop, batch=batch, repeats=repeats, warmup=not quick)
        result = measure(case)
        seconds = result.get("seconds")
        training.append(dict(model=name, crop=crop, batch=batch, seconds_per_step=seconds,
                             crops_per_s=batch / seconds if seconds else None, peak_mb=result.get("peak_mb"),
                             macs_per_pixel=_macs(case) / (batch * crop * crop), runs=result.get("runs", 0),
                             **({"error": result["error"]} if "error" in result else {})))

    # A shared machine's matmul rate drifts over a run: the higher of two measurements is the
    # conservative reference for efficiency.
    machine["matmul_gflops"] = max(matmul["gflops"], measure(matmul_case).get("gflops", 0.0))
    for row in rows:
        row["efficiency"] = (row["macs_per_pixel"] * row["pixels"] * 2 / row["seconds"] / (machine["matmul_gflops"] * 1e9)
                             if row["seconds"] else None)
    summary = _summary(rows, models, sizes)
    summary["wall_seconds"] = time.perf_counter() - started
    return dict(machine=machine, quick=quick, definitions=DEFINITIONS, rows=rows, training=training,
                summary=summary)


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
        off = _row(case, measure(case), _macs(case))
        tile = Case("infer", name, height=RATIO_TILE, width=RATIO_TILE)
        macs_ratio = _macs(replace(tile, r3=True)) / _macs(tile)
        ratio = measure(replace(tile, kind="r3_ratio", repeats=repeats)).get("ratio")
        on = _row(replace(case, r3=True), {}, round(off["macs_per_pixel"] * macs_ratio * height * width))
        on["extrapolated"] = True
        if off["seconds"] and ratio:
            on["seconds"] = off["seconds"] * ratio
        on["note"] = (f"extrapolated: R3-off time x {_fmt(ratio, '.2f')} (R3 on / off measured on one "
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
        per_pass[name] = {stage: _macs(case, stage) / size**2 for stage in ("test", "refine")}
    return dict(model=model, preset="sidd", size=label, speedup_256=headline.get("speedup"),
                memory_ratio_256=headline.get("memory_ratio"), efficiency=best.get("efficiency"),
                efficiency_size=best.get("size"), max_abs_diff_vs_reference=max(diffs, default=None),
                macs_per_pixel_per_pass=per_pass)


# ------------------------------------------------------------------------------------- reporting


def _fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def _si(value) -> str:
    if value is None:
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}"


# (header, width, cell): the rows table's columns; a negative width aligns left.
_COLUMNS = (
    ("model", -8, lambda r: r["model"]),
    ("path", -9, lambda r: r["path"]),
    ("size", 9, lambda r: r["size"]),
    ("R3", 3, lambda r: "on" if r["r3"] else "off"),
    ("tiles", 5, lambda r: _fmt(r.get("tiles"), "d")),
    ("runs", 4, lambda r: str(r["runs"])),
    ("seconds", 9, lambda r: _fmt(r["seconds"], ".3g") + ("*" if r.get("extrapolated") else "")),
    ("peak MB", 8, lambda r: _fmt(r["peak_mb"], ".0f")),
    ("GPU MB", 7, lambda r: _fmt(r.get("peak_gpu_mb"), ".0f")),
    ("MACs/px", 8, lambda r: _si(r["macs_per_pixel"])),
    ("eff", 5, lambda r: _fmt(r["efficiency"], ".0%")),
    ("speedup", 7, lambda r: _fmt(r.get("speedup"), ".1f")),
    ("mem x", 6, lambda r: _fmt(r.get("memory_ratio"), ".1f")),
    ("note", -1, lambda r: r.get("note") or r.get("error") or ""),
)


def _line(cells) -> str:
    return " ".join(f"{text:<{-width}}" if width < 0 else f"{text:>{width}}" for text, width in cells).rstrip()


def format_table(result: dict) -> str:
    m, s = result["machine"], result["summary"]
    gpu = any("peak_gpu_mb" in r for r in result["rows"])
    columns = [c for c in _COLUMNS if gpu or c[0] != "GPU MB"]
    header = _line((name, width) for name, width, _ in columns)
    lines = [f"{m['cpu']}, {m['threads']} threads, torch {m['torch']}, {m['device']}: "
             f"matmul {m['matmul_gflops']:.1f} GFLOP/s; idle process {m['baseline_rss_mb']:.0f} MB; "
             f"weights {m['weights']}", "", header, "-" * len(header)]
    lines += [_line((cell(r), width) for _, width, cell in columns) for r in result["rows"]]
    lines += ["", _line([("training", -8), ("crop", 5), ("batch", 5), ("s/step", 8), ("crops/s", 8),
                         ("peak MB", 8), ("MACs/px", 8)])]
    lines += [_line([(t["model"], -8), (str(t["crop"]), 5), (str(t["batch"]), 5),
                     (_fmt(t["seconds_per_step"], ".3g"), 8), (_fmt(t["crops_per_s"], ".3g"), 8),
                     (_fmt(t["peak_mb"], ".0f"), 8), (_si(t["macs_per_pixel"]), 8), (t.get("error", ""), -1)])
              for t in result["training"]]
    lines += ["", f"{s['model']} ({s['preset']}), {s['size']}, R3 off, reference / ours: time "
                  f"{_fmt(s['speedup_256'], '.1f')}x, peak memory {_fmt(s['memory_ratio_256'], '.1f')}x; "
                  f"max |ours - reference| {_fmt(s['max_abs_diff_vs_reference'], '.2g')}; "
                  f"efficiency {_fmt(s['efficiency'], '.0%')} of matmul at {s['efficiency_size'] or '-'}",
              "eff: counted multiply-adds x 2 / seconds / measured matmul FLOP/s; speedup, mem x: reference / ours; "
              "* extrapolated"]
    return "\n".join(lines)


def write_json(result: dict, path) -> None:
    atomic_write_bytes(path, (json.dumps(result, indent=2) + "\n").encode())


def profile_test_pass(device: str = "cpu", size: int = 256, threads: int | None = None,
                      model: str = SUMMARY_MODEL) -> str:
    """torch.profiler's top-10 ops (by own time) of one test pass of our path, after a warm-up."""
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(threads or torch.get_num_threads())
    net = prepare_for_inference(_model(model, device), device)
    x = _image(Case("infer", height=size, width=size), device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with torch.inference_mode():
        denoise_tiled(net, x, r3=False)
        with profile(activities=activities) as prof:
            denoise_tiled(net, x, r3=False)
            _sync(torch.device(device))
    sort = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=sort, row_limit=10)


# ------------------------------------------------------------------------------------------- CLI


def _int_list(ctx, param, value):
    if value is None:
        return None
    try:
        sizes = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not sizes or min(sizes) <= 0:
        raise click.BadParameter(f"expected positive sizes, got {value!r}")
    return sizes


def _model_list(ctx, param, value):
    if value is None:
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = sorted(set(names) - set(ARCHITECTURES))
    if not names or unknown:
        raise click.BadParameter(f"unknown model(s) {unknown}; choose from {sorted(ARCHITECTURES)}")
    return names


@click.command("bench")
@click.option("--quick", is_flag=True, help=f"Smoke run (~1 min): {QUICK_SIZE}x{QUICK_SIZE}, one run, no warm-up, "
              f"R3 and training for {QUICK_FULL_MODEL} only, no 12 MP photo.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default="lgbpn-bench.json",
              show_default=True, help="Where to save the results.")
@click.option("--sizes", callback=_int_list, help="Square image sides, comma-separated [256,512,1024].")
@click.option("--models", callback=_model_list, help=f"Architectures, comma-separated [{','.join(MODELS)}].")
@click.option("--repeats", type=click.IntRange(min=1), help="Timed runs per case, median reported [3; quick 1].")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads [torch's default].")
@click.option("--photo/--no-photo", default=None, help="Include the 12 MP photo (tiled) [on; quick off].")
@click.option("--profile", is_flag=True,
              help=f"Only print torch.profiler's top-10 ops for one {SUMMARY_MODEL} test pass "
                   "at 256x256 (quick: 64x64).")
def bench_command(quick, device, json_path, sizes, models, repeats, threads, photo, profile):
    """Benchmark our inference path against the reference's: time, memory, MACs, training speed."""
    if device == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("CUDA is not available on this machine", param_hint="--device")
    if profile:
        click.echo(profile_test_pass(device, 64 if quick else 256, threads))
        return
    result = run_benchmark(quick, device, sizes, models, repeats, threads, photo)
    click.echo(format_table(result))
    write_json(result, json_path)
    click.echo(f"saved {json_path}", err=True)
