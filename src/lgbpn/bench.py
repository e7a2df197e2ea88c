"""`lgbpn bench`: time, peak memory and arithmetic efficiency of our inference path against the
reference's test path (same weights), for LG-BPN and AP-BSN, on one machine in one run.

Every measured case runs in a process of its own, forked from a server that has imported torch and
this module and done nothing else, so the peak resident memory a row reports is that case's alone
(it includes the ~torch baseline, reported as `machine.baseline_rss_mb`). Multiply-adds are counted
with torch's FLOP counter on meta tensors: counting costs no arithmetic, and it counts exactly the
work the timed call does (tile overlaps, PD padding, the reference's quadrant overlaps included).
Weights are random and seeded: the time a network takes does not depend on its weights.
"""

import json
import math
import multiprocessing
import os
import platform
import resource
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path

import click
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from .io import atomic_write_bytes
from .models import ARCHITECTURES, build_model
from .reference_path import reference_test_path
from .tiling import DEFAULT_TILE, denoise_tiled
from .train.config import TrainConfig

MODELS = ("lgbpn", "lgbpn-s", "apbsn")
SIZES = (256, 512, 1024)
PHOTO = (3000, 4000)  # (H, W): a 12-megapixel photo
QUICK_SIZE = 48
QUICK_R3_MODEL = "lgbpn-s"  # the only model run with R3 in quick mode: R3 is ~9 passes
QUICK_TRAIN = (40, 1)  # crop, batch
SUMMARY_MODEL = "lgbpn"
# The reference path needs ~6.8 GB at 256x256 and 4x that per 4x pixels (beyond 24 GiB at 512x512):
# it is not run on larger images, whose rows carry an estimate instead.
REFERENCE_MAX_PIXELS = 256 * 256
RATIO_TILE = 512  # the tile on which R3-on / R3-off is measured to extrapolate the photo's R3 time
MATMUL_N = 2048
LONG_RUN_S = 60.0  # a warm-up longer than this leaves one timed run: medians of hours help nobody
WEIGHTS = "random (timing only)"


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
        fn()
        _sync(device)
        if time.perf_counter() - start > LONG_RUN_S:
            repeats = 1
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
        fn = lambda: denoise_tiled(model, x, r3=case.r3, progress=case.progress)  # noqa: E731
    seconds, runs, out = _timed(fn, case, device)
    return {"seconds": seconds, "runs": runs, "output": out.cpu() if case.keep_output else None}


def _r3_ratio(case: Case, device) -> dict:
    model, x = _model(case.model, device), _image(case, device)
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
    for _ in range(5):
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
            return {"error": "process killed (out of memory?)", "peak_mb": None}


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
    with counter:
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


def _tiles(model_name: str, height: int, width: int) -> int:
    """How many tiles denoise_tiled cuts an image into (its tile is rounded to the PD alignment)."""
    align = _meta_model(model_name).alignment()
    tile = max(align, DEFAULT_TILE // align * align)
    return math.ceil(height / tile) * math.ceil(width / tile)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _row(case: Case, result: dict, macs: int, gflops: float) -> dict:
    pixels = case.height * case.width
    seconds = result.get("seconds")
    row = dict(model=case.model, path=case.path, size=f"{case.width}x{case.height}", pixels=pixels, r3=case.r3,
               seconds=seconds, peak_mb=result.get("peak_mb"), macs_per_pixel=macs / pixels,
               runs=result.get("runs", 0), warmup=case.warmup,
               efficiency=macs * 2 / seconds / (gflops * 1e9) if seconds else None)
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
    """Run the benchmark; returns {machine, rows, training, summary} (see the module notes)."""
    threads = threads or torch.get_num_threads()
    sizes = sorted(sizes or ([QUICK_SIZE] if quick else SIZES))
    models = list(models or MODELS)
    repeats = repeats or (1 if quick else 3)
    photo = not quick if photo is None else photo
    started = time.perf_counter()

    def measure(case: Case) -> dict:
        log(f"  {case.describe()} ...")
        result = _isolated(case, device, threads)
        if "error" in result:
            log(f"    {result['error']}")
        return result

    gflops = measure(Case("matmul"))["gflops"]
    machine = dict(cpu=_cpu_model(), threads=threads, cores=os.cpu_count(), torch=torch.__version__,
                   python=platform.python_version(), device=device, matmul_gflops=gflops,
                   matmul=f"float32 {MATMUL_N}x{MATMUL_N} torch.mm, best of 5",
                   baseline_rss_mb=measure(Case("idle"))["peak_mb"], dtype="float32", weights=WEIGHTS)
    if device == "cuda":
        machine["gpu"] = torch.cuda.get_device_name()

    rows, ours_outputs, reference_peaks = [], {}, {}
    for size in sizes:
        for name in models:
            base = Case("infer", name, height=size, width=size, repeats=repeats, keep_output=size == sizes[0])
            for r3 in (False, True):
                if r3 and quick and name != QUICK_R3_MODEL:
                    continue
                case = replace(base, r3=r3, keep_output=base.keep_output and not r3)
                result = measure(case)
                if result.get("output") is not None:
                    ours_outputs[name] = result["output"]
                rows.append(_row(case, result, _macs(case), gflops))
            case = replace(base, path="reference", warmup=False, repeats=1)
            if size * size <= REFERENCE_MAX_PIXELS:
                result = measure(case)
                row = _row(case, result, _macs(case), gflops)
                if result.get("seconds"):
                    reference_peaks[name] = (size * size, result["peak_mb"])
                if result.get("output") is not None and name in ours_outputs:
                    row["max_abs_diff"] = (result["output"] - ours_outputs[name]).abs().max().item()
            else:
                row = _row(case, {}, _macs(case), gflops)
                row["note"] = _reference_note(reference_peaks.get(name), size * size, machine["baseline_rss_mb"])
            rows.append(row)
    if photo:
        rows += _photo_rows(models, repeats, gflops, measure)
    _add_ratios(rows)

    crop, batch = QUICK_TRAIN if quick else (TrainConfig.crop, TrainConfig.batch)
    training = []
    for name in models:
        case = Case("train", name, height=crop, width=crop, batch=batch, repeats=repeats)
        result = measure(case)
        seconds = result.get("seconds")
        training.append(dict(model=name, crop=crop, batch=batch, seconds_per_step=seconds,
                             crops_per_s=batch / seconds if seconds else None, peak_mb=result.get("peak_mb"),
                             macs_per_pixel=_macs(case) / (batch * crop * crop), runs=result.get("runs", 0),
                             **({"error": result["error"]} if "error" in result else {})))

    summary = _summary(rows, models, sizes)
    summary["wall_seconds"] = time.perf_counter() - started
    return dict(machine=machine, quick=quick, rows=rows, training=training, summary=summary)


def _reference_note(measured, pixels: int, baseline_mb: float) -> str:
    if measured is None:
        return "not run: the reference path needs ~4x the memory per 4x pixels (6.8 GB at 256x256)"
    measured_pixels, peak_mb = measured
    estimate = baseline_mb + (peak_mb - baseline_mb) * pixels / measured_pixels
    side = math.isqrt(measured_pixels)
    return (f"not run: the reference path needs ~{estimate / 1024:.0f} GB here "
            f"(estimated from its {side}x{side} peak, memory growing with pixels)")


def _photo_rows(models: list[str], repeats: int, gflops: float, measure) -> list[dict]:
    """The 12 MP photo, tiled, R3 off; R3 on extrapolated from the R3 on/off ratio on one tile."""
    rows = []
    height, width = PHOTO
    for name in models:
        case = Case("infer", name, height=height, width=width, warmup=False, progress=True)
        off = _row(case, measure(case), _macs(case), gflops)
        ratio = measure(Case("r3_ratio", name, height=RATIO_TILE, width=RATIO_TILE, repeats=repeats)).get("ratio")
        on_case = replace(case, r3=True)
        on = _row(on_case, {}, _macs(on_case), gflops)
        if off["seconds"] and ratio:
            on.update(seconds=off["seconds"] * ratio, extrapolated=True, efficiency=None,
                      note=f"extrapolated: R3-off time x {ratio:.2f} (R3 on/off measured on one "
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


def format_table(result: dict) -> str:
    m, s = result["machine"], result["summary"]
    lines = [f"{m['cpu']}, {m['threads']} threads, torch {m['torch']}, {m['device']}: "
             f"matmul {m['matmul_gflops']:.1f} GFLOP/s; idle process {m['baseline_rss_mb']:.0f} MB; "
             f"weights {m['weights']}", ""]
    header = f"{'model':<8} {'path':<9} {'size':>9} {'R3':>3} {'tiles':>5} {'runs':>4} {'seconds':>9} " \
             f"{'peak MB':>8} {'MACs/px':>8} {'eff':>5} {'speedup':>7} {'mem x':>6}  note"
    lines += [header, "-" * len(header)]
    for r in result["rows"]:
        seconds = _fmt(r["seconds"], ".3g") + ("*" if r.get("extrapolated") else "")
        lines.append(
            f"{r['model']:<8} {r['path']:<9} {r['size']:>9} {'on' if r['r3'] else 'off':>3} "
            f"{_fmt(r.get('tiles'), 'd'):>5} {r['runs']:>4} {seconds:>9} {_fmt(r['peak_mb'], '.0f'):>8} "
            f"{_si(r['macs_per_pixel']):>8} {_fmt(r['efficiency'], '.0%'):>5} {_fmt(r.get('speedup'), '.1f'):>7} "
            f"{_fmt(r.get('memory_ratio'), '.1f'):>6}  {r.get('note') or r.get('error') or ''}")
    lines += ["", f"{'training':<8} {'crop':>5} {'batch':>5} {'s/step':>8} {'crops/s':>8} {'peak MB':>8} {'MACs/px':>8}"]
    for t in result["training"]:
        lines.append(f"{t['model']:<8} {t['crop']:>5} {t['batch']:>5} {_fmt(t['seconds_per_step'], '.3g'):>8} "
                     f"{_fmt(t['crops_per_s'], '.3g'):>8} {_fmt(t['peak_mb'], '.0f'):>8} {_si(t['macs_per_pixel']):>8}"
                     f"  {t.get('error', '')}")
    lines += ["", f"{s['model']} ({s['preset']}), {s['size']}, R3 off: speedup {_fmt(s['speedup_256'], '.1f')}x, "
                  f"peak memory {_fmt(s['memory_ratio_256'], '.1f')}x less than the reference path; "
                  f"max |ours - reference| {_fmt(s['max_abs_diff_vs_reference'], '.2g')}; "
                  f"efficiency {_fmt(s['efficiency'], '.0%')} of matmul at {s['efficiency_size'] or '-'}",
              "eff: counted multiply-adds x 2 / seconds / measured matmul FLOP/s; speedup, mem x: reference / ours; "
              "* extrapolated"]
    return "\n".join(lines)


def write_json(result: dict, path) -> None:
    atomic_write_bytes(path, (json.dumps(result, indent=2) + "\n").encode())


def profile_test_pass(device: str = "cpu", size: int = 256, threads: int | None = None, model: str = SUMMARY_MODEL) -> str:
    """torch.profiler's top-10 ops (by own time) of one test pass of our path, after a warm-up."""
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(threads or torch.get_num_threads())
    net = _model(model, device)
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
@click.option("--quick", is_flag=True, help=f"Smoke run: {QUICK_SIZE}x{QUICK_SIZE}, one run each, no 12 MP photo.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default="lgbpn-bench.json",
              show_default=True, help="Where to save the results.")
@click.option("--sizes", callback=_int_list, help="Square image sides, comma-separated [256,512,1024].")
@click.option("--models", callback=_model_list, help=f"Architectures, comma-separated [{','.join(MODELS)}].")
@click.option("--repeats", type=click.IntRange(min=1), help="Timed runs per case, median reported [3; quick 1].")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads [torch's default].")
@click.option("--photo/--no-photo", default=None, help="Include the 12 MP photo (tiled) [on; quick off].")
@click.option("--profile", is_flag=True,
              help=f"Only print torch.profiler's top-10 ops for one {SUMMARY_MODEL} test pass at 256x256 (quick: 64x64).")
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
