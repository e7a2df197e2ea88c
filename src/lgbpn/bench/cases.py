"""One measurement, as it runs inside the process of its own that the harness starts for it."""

import math
import resource
import statistics
import time
from dataclasses import dataclass
from functools import partial

import torch

from ..models import build_model
from ..precision import autocast
from ..reference_path import reference_test_path
from ..tiling import denoise_tiled, prepare_for_inference
from ..train.config import TrainConfig
from ..train.trainer import self_supervised_loss, training_layout
from .plan import LONG_RUN_S, MATMUL_N, SUMMARY_MODEL


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
    precision: str = "fp32"  # training: fp32 | bf16 (autocast, as `lgbpn train --precision`)

    def describe(self) -> str:
        size = f"{self.width}x{self.height}"
        if self.kind == "infer":
            return f"{self.model} {self.path} {size} R3 {'on' if self.r3 else 'off'}"
        if self.kind == "train":
            return f"{self.model} training step, batch {self.batch} of {size}, {self.precision}"
        if self.kind == "r3_ratio":
            return f"{self.model} R3 on/off on one {size} tile"
        return self.kind


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, case: Case, device: torch.device):
    """(median seconds, number of timed runs, last output) of `fn` after an optional warm-up."""
    if case.warmup:
        start = time.perf_counter()
        out = fn()
        _sync(device)
        seconds = time.perf_counter() - start
        if seconds > LONG_RUN_S:  # first-call overheads are milliseconds: this run is the measurement
            return seconds, 1, out
    times, out = [], None
    for _ in range(case.repeats):
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


def reference_forward(model, x: torch.Tensor) -> torch.Tensor:
    """The reference implementation's test pass: the whole image, padded, in one call."""
    h, w = x.shape[-2:]
    with torch.no_grad(), reference_test_path(model):  # no_grad: what the reference's test loop uses
        return model(model.pad_for_inference(x), stage="test")[..., :h, :w]


def ours(model, x: torch.Tensor, **options) -> torch.Tensor:
    """Our inference path in float32: the precision the reference runs in and the rows compare with."""
    return denoise_tiled(model, x, precision="fp32", **options)


def _infer(case: Case, device) -> dict:
    model, x = _model(case.model, device), _image(case, device)
    if case.path == "reference":
        fn = partial(reference_forward, model, x)
    else:
        prepare_for_inference(model, device)
        fn = partial(ours, model, x, r3=case.r3, progress=case.progress)
    seconds, runs, out = _timed(fn, case, device)
    return {"seconds": seconds, "runs": runs, "output": out.cpu() if case.keep_output else None}


def _r3_ratio(case: Case, device) -> dict:
    model, x = prepare_for_inference(_model(case.model, device), device), _image(case, device)
    one_tile = max(case.height, case.width) + model.alignment()
    off, _, _ = _timed(lambda: ours(model, x, r3=False, tile=one_tile), case, device)
    on, _, _ = _timed(lambda: ours(model, x, r3=True, tile=one_tile), case, device)
    return {"ratio": on / off}


def _train(case: Case, device) -> dict:
    """One step of `lgbpn train`: its memory layout, the self-supervised loss under the run's precision."""
    layout = training_layout(case.precision)
    model = _model(case.model, device).to(memory_format=layout).train()
    x = _image(case, device).to(memory_format=layout)
    optimizer = torch.optim.Adam(model.parameters(), lr=TrainConfig.lr)

    def step():
        with autocast(case.precision, device):
            loss = self_supervised_loss(model, x)
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


def peak_rss_mb(who=resource.RUSAGE_SELF) -> float:
    """Peak resident memory so far of this process (or of its largest waited-for child)."""
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def guarded(fn) -> dict:
    """fn()'s figures, or its error: one failing case must not end a run that takes hours."""
    try:
        return fn()
    except (MemoryError, torch.OutOfMemoryError):
        return {"error": "out of memory"}
    except Exception as exc:  # it shows in its row
        return {"error": f"{type(exc).__name__}: {exc}"}


def measure(case: Case, device: str, threads: int) -> dict:
    """Run `case` in this process: its figures, or its error, and this process's peak memory."""
    torch.set_num_threads(threads)
    device = torch.device(device)
    result = guarded(partial(_KINDS[case.kind], case, device))
    result["peak_mb"] = peak_rss_mb()
    if device.type == "cuda":
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return result


def profile_test_pass(device: str = "cpu", size: int = 256, threads: int | None = None,
                      model: str = SUMMARY_MODEL) -> str:
    """torch.profiler's top-10 ops (by own time) of one test pass of our path, after a warm-up."""
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(threads or torch.get_num_threads())
    net = prepare_for_inference(_model(model, device), device)
    x = _image(Case("infer", height=size, width=size), device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with torch.inference_mode():
        ours(net, x, r3=False)
        with profile(activities=activities) as prof:
            ours(net, x, r3=False)
            _sync(torch.device(device))
    sort = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=sort, row_limit=10)
