"""Self-supervised training: L1 between the network's blind-spot output and the noisy input itself.

Runs single-process or under torchrun (DistributedDataParallel: gloo on CPU, NCCL on GPU); each rank
computes its slice of every global batch and only rank 0 writes. Everything needed to continue
exactly (model, optimizer, schedule, step) is checkpointed atomically; SIGINT/SIGTERM save and stop.
"""

import csv
import fnmatch
import functools
import logging
import math
import os
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ..corrections import finish_output
from ..data.crops import NoisyCrops, StepSampler, heaviest_simulated_noise
from ..data.formats import Sample, centre_crop, centre_window, discover
from ..errors import ConfigError, DataError, LgbpnError
from ..io import atomic_path, find_images
from ..layout import to_channels_first, to_channels_last
from ..metrics import psnr, ssim
from ..models.registry import build_model
from ..noise import told_noise
from ..precision import autocast, resolve_precision
from ..scale import to_model_scale
from ..selfscore import blind_spot_error, error_db, noise_samples, view_error
from ..tiling import denoise_tiled
from ..weights import load_model, save_weights
from .config import CLEAN_CORPUS, TrainConfig, save_config
from .distill import TargetCache, distill_loss, teacher_reference

# val_psnr / val_ssim: the network's own output (the headline); val_psnr_corrected: with our two
# output corrections, or a student's guard (the default output of `lgbpn denoise`). val_selfsup: without
# clean references, the self-supervised score on held-out noisy crops (selfscore.py; last, so that
# older logs still read).
LOG_FIELDS = ["step", "loss", "lr", "crops_per_s", "val_psnr", "val_ssim", "val_psnr_corrected", "seconds", "val_selfsup"]
log = logging.getLogger(__name__)


class TrainingDiverged(LgbpnError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def self_supervised_loss(model, noisy: torch.Tensor) -> torch.Tensor:
    """The paper's loss: L1 between the blind-spot output and the noisy input itself."""
    return F.l1_loss(model(noisy, stage="train"), noisy)


def _dist_setup() -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def _lr_factor(config: TrainConfig):
    def factor(step: int) -> float:
        if config.schedule == "cosine":
            decay = 0.5 * (1 + math.cos(math.pi * min(step, config.steps) / config.steps))
        else:
            decay = config.lr_gamma ** (step // config.lr_step)
        warmup = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
        return decay * warmup

    return factor


def training_layout(precision: str) -> torch.memory_format:
    """Channels-last (NHWC) in fp32: oneDNN then vectorises the depthwise convs over channels
    (lgbpn-s step 1.2x faster on CPU). Not in bf16: on a CPU without native bf16, torch 2.13's
    channels-last depthwise-conv weight gradients turned to NaN within a few steps; NCHW did not."""
    return torch.channels_last if precision == "fp32" else torch.contiguous_format


def _ema(model: nn.Module, decay: float) -> AveragedModel:
    """An exponential moving average of `model`'s weights, its decay ramped up over the first steps
    ((1 + n) / (10 + n)) so that early averages are not dominated by the random initial weights."""

    def average(ema_param, param, n_averaged):
        ramp = min(decay, float((1 + n_averaged) / (10 + n_averaged)))
        return ema_param + (param - ema_param) * (1 - ramp)

    return AveragedModel(model, avg_fn=average, use_buffers=False)


@contextmanager
def _stop_on_signals():
    """Turn SIGINT/SIGTERM into a flag checked between steps, so a checkpoint can be written."""
    flag = {"signal": None}
    previous = {}

    def handler(signum, frame):
        flag["signal"] = signum

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread
            pass
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def collect_samples(paths: list[Path], exclude: list[str] = (), window: int = 0) -> list[Sample]:
    """Every sample under `paths`, but those whose name matches a glob pattern in `exclude`; with `window`,
    each cut to its central window of that side."""
    samples = []
    for path in paths:
        samples += discover(Path(path))
    kept = [s for s in samples if not any(fnmatch.fnmatch(s.name, pattern) for pattern in exclude)]
    if samples and not kept:
        raise DataError(f"{', '.join(map(str, paths))}: every image matches the exclude patterns {list(exclude)}")
    return [centre_window(s, window) for s in kept] if window else kept


def collect_clean_photos(config: TrainConfig) -> list[Path]:
    """The clean photos that a distillation's simulated pairs come from: `clean_data` (else the corpus that
    scripts/build_clean_corpus.py builds, where it is), less `exclude`. None there: the student learns from
    the real photos alone, with a warning (users need no clean photos)."""
    folders = config.clean_data or ([str(CLEAN_CORPUS)] if CLEAN_CORPUS.is_dir() else [])
    if not folders:
        log.warning("simulated %s: no clean photos (--clean DIR, or scripts/build_clean_corpus.py builds them in %s): "
                    "the student learns from the real photos alone", config.simulated, CLEAN_CORPUS)
        return []
    photos = [path for path, name in find_images([Path(folder) for folder in folders])
              if not any(fnmatch.fnmatch(str(name), pattern) for pattern in config.exclude)]
    if not photos:
        raise DataError(f"{', '.join(folders)}: no clean photos (after the exclude patterns {config.exclude})")
    return photos


def validation_subset(samples: list[Sample], count: int) -> list[Sample]:
    """`count` samples evenly spaced over the list, so that every data set in it is represented."""
    if count >= len(samples):
        return samples
    return [samples[i] for i in np.linspace(0, len(samples) - 1, count).round().astype(int)]


def _top_rows(load, rows: int) -> np.ndarray:
    return load()[:rows]


class HeldOutCrops:
    """Noisy crops kept out of training, for choosing a model when no clean reference exists.

    `hold_out` takes the bottom `crop` rows of some training images (their centre `crop` columns) and
    trains on the rows above. A student is scored by its error against a second noisy view of each
    crop (selfscore.py), the noise sample being its teacher's residual there (the first target); a
    blind-spot network by its own loss. In dB, higher is better.
    """

    def __init__(self, crops: list[np.ndarray], targets: TargetCache | None):
        self.crops = [to_channels_first(to_model_scale(c if c.ndim == 3 else c[..., None]))[None] for c in crops]
        self.samples = None  # per crop, the noise samples of its second views
        if targets is not None:  # from the teacher's outputs on the crops, computed once (and cached on disk)
            references = [to_channels_first(targets.targets(c if c.ndim == 3 else c[..., None])[0])[None] for c in crops]
            self.samples = [noise_samples(crop, reference) for crop, reference in zip(self.crops, references)]

    def __len__(self) -> int:
        return len(self.crops)

    def describe(self) -> str:
        how = ("a student's error against a second noisy view, its teacher's residual as the noise"
               if self.samples is not None else "the blind-spot network's own loss")
        return f"the self-supervised score on {len(self)} held-out noisy crops ({how}; no clean references)"

    def score(self, model, device) -> float:
        model.eval()
        errors = []
        with torch.no_grad():
            def run(x):
                return denoise_tiled(model, x.to(device), r3=False, precision="fp32").cpu()

            for i, crop in enumerate(self.crops):
                if self.samples is None:
                    errors.append(blind_spot_error(run, crop).mean())
                else:
                    errors.append(view_error(run, crop, self.samples[i]).mean())
        model.train()
        return error_db(torch.stack(errors))


def hold_out(samples: list[Sample], count: int, crop: int) -> tuple[list[Sample], list[np.ndarray]]:
    """Training samples and held-out crops: the bottom `crop` rows of up to `count` images (spread over
    the list) that are at least twice that tall, whose training sample keeps the rows above."""
    chosen = {id(s) for s in validation_subset(samples, count)}
    kept, crops = [], []
    for sample in samples:
        if id(sample) in chosen:
            image = sample.noisy()
            h, w = image.shape[:2]
            if h >= 2 * crop and w >= crop:
                left = (w - crop) // 2
                crops.append(image[h - crop :, left : left + crop])
                sample = Sample(sample.name, functools.partial(_top_rows, sample.noisy, h - crop), None)
        kept.append(sample)
    return kept, crops


def validate(model, samples: list[Sample], config: TrainConfig, device) -> dict[str, float]:
    """Mean PSNR/SSIM of the network's own output (test mode), and PSNR with the output corrections (a
    student's: its guard)."""
    scores = []
    model.eval()
    for sample in samples:
        noisy, clean = sample.noisy(), sample.clean()
        if noisy.ndim == 2:
            noisy, clean = noisy[..., None], clean[..., None]
        if config.val_crop:
            noisy, clean = centre_crop(noisy, config.val_crop), centre_crop(clean, config.val_crop)
        x_in = to_channels_first(to_model_scale(noisy))[None].to(device)
        # fp32 on every device: the score of the float32 weights as saved, whatever the training precision.
        out = denoise_tiled(model, x_in, r3=config.val_r3, seed=config.seed, precision="fp32")
        corrected = finish_output(out, x_in, model.corrections_learnt)
        out, corrected = (to_channels_last(t[0]) for t in (out, corrected))
        clean = to_model_scale(clean)
        scores.append((psnr(out, clean), ssim(out, clean), psnr(corrected, clean)))
    model.train()
    means = [float(np.mean(s)) for s in zip(*scores)] if scores else [float("nan")] * 3
    return dict(zip(("val_psnr", "val_ssim", "val_psnr_corrected"), means))


def _save_checkpoint(path: Path, model, ema, optimizer, scheduler, step: int, config: TrainConfig, best: float) -> None:
    with atomic_path(path) as tmp:
        torch.save(
            {
                "step": step,
                "model": model.state_dict(),
                "ema": ema.state_dict() if ema is not None else None,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "config": config.to_dict(),
                "best_psnr": best,
            },
            tmp,
        )


def _append_log(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=LOG_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in LOG_FIELDS})


def convergence_gain(history: list[tuple[int, float]], threshold: float, window: float) -> float | None:
    """The validation gain over the last `window` share of the steps, if below `threshold` dB (None otherwise).

    `history`: (step, network-alone validation PSNR) in step order. The gain is measured from the last
    validation at or before (1 - window) x the latest step, so the span is never shorter than the
    window, and two validation intervals at least (four validations in all), so that one slow
    interval early on does not stop a run.
    """
    if not threshold or len(history) < 4:
        return None
    step, latest = history[-1]
    earlier = [i for i, (at, _) in enumerate(history) if at <= (1 - window) * step]
    if not earlier or earlier[-1] > len(history) - 3:
        return None
    gain = latest - history[earlier[-1]][1]
    return gain if gain < threshold else None


def _validation_history(path: Path, key: str = "val_psnr") -> list[tuple[int, float]]:
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return [(int(r["step"]), float(r[key])) for r in csv.DictReader(fh) if r.get(key)]


def _truncate_log(path: Path, step: int) -> None:
    """On resume, drop rows logged after the checkpoint (they will be logged again)."""
    if not path.exists():
        return
    with open(path, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= step]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=LOG_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def train(
    data: list[Path],
    out: Path,
    config: TrainConfig,
    val: list[Path] | None = None,
    init: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    stop_at: int | None = None,
    targets: TargetCache | None = None,
) -> dict:
    """Train; returns a summary. `stop_at` pauses the run at that step (checkpoint saved, the schedule
    unchanged: `resume` continues it).

    Self-supervised by default; with `targets` (a distillation's teacher outputs) the loss is L1 to
    them instead.
    """
    out = Path(out)
    rank, world, device = _dist_setup()
    if config.batch % world:
        raise ConfigError(f"--batch {config.batch} must be a multiple of the number of processes ({world})")
    checkpoint = out / "last.pt"
    if checkpoint.exists() and not resume:
        raise ConfigError(f"{out}: already holds a training run; pass --resume to continue it or choose a new --out")

    samples = collect_samples(data, config.exclude, config.window)
    val_samples = [s for s in (collect_samples(val) if val else samples) if s.clean is not None]
    val_samples = validation_subset(val_samples, config.val_images)
    held_out, crops = None, []
    if not val_samples and config.val_images:  # no clean references: choose on held-out noisy crops
        samples, crops = hold_out(samples, config.val_images, config.val_crop or config.crop)
    validating = bool(val_samples or crops)  # on every rank (rank 0 scores)
    precision = resolve_precision(config.precision, device)
    clean_photos = collect_clean_photos(config) if targets is not None and config.simulated else []
    noisiest = None
    if targets is not None:  # every teacher output before the first step; other ranks wait, then read them
        if rank == 0:
            targets.to(device)
            noisiest = targets.fill(samples, progress=progress, extra_noise=config.extra_noise > 0)
            if clean_photos:
                noisiest = max(noisiest, heaviest_simulated_noise())
        if world > 1:
            dist.barrier()
    if crops and rank == 0:
        held_out = HeldOutCrops(crops, targets)
    selected_by = (f"the validation PSNR of the network's own output on {len(val_samples)} images with clean references"
                   if val_samples else held_out.describe() if held_out else
                   "the last step (no clean references, and no image tall enough to hold out a crop)")
    select_key = "val_psnr" if val_samples else "val_selfsup"

    torch.manual_seed(config.seed)  # same initial weights on every rank
    if init:
        model = load_model(init, arch=config.arch, preset=config.preset, **config.model)  # a mismatch is refused
    else:
        model = build_model(config.arch, preset=config.preset, **config.model)
    layout = training_layout(precision)  # from the first step, resumed runs included: bit-exact resume
    model.to(device, memory_format=layout).train()
    ema = _ema(model, config.ema_decay) if config.ema_decay else None
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(config))
    start, best = 0, -math.inf
    if resume and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        if ema is not None:
            if state.get("ema") is None:
                raise ConfigError(f"{checkpoint}: holds no weight average; this config asks for ema_decay {config.ema_decay}")
            ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, best = state["step"], state["best_psnr"]
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        save_config(config, out / "config.yaml")
        _truncate_log(out / "log.csv", start)
    history = _validation_history(out / "log.csv", select_key) if rank == 0 else []  # validations so far, a resumed run's too
    converged = None  # rank 0: {step, gain} once the validation PSNR has stopped rising
    net = DistributedDataParallel(model) if world > 1 else model

    end = config.steps if stop_at is None else min(config.steps, stop_at)
    if end <= start:
        raise ConfigError(f"{out}: the run is at step {start}; nothing to do up to step {end}")
    crops = NoisyCrops(samples, config.crop, config.seed, targets, config.extra_noise if targets is not None else 0.0,
                       config.extra_pattern, config.simulated if clean_photos else 0.0, clean_photos, config.scene_targets)
    loader = DataLoader(
        crops,
        batch_size=config.batch // world,
        sampler=StepSampler(start, end, config.batch, rank, world),
        num_workers=config.workers,
        persistent_workers=config.workers > 0,
    )
    shipped = ema.module if ema is not None else model  # the weights validated and saved for use
    if targets is not None:
        shipped.corrections_learnt = targets.corrections_learnt
    if noisiest is not None:  # rank 0 of a distillation: the student's weights name its teacher and noise range
        shipped.teacher, shipped.noise_sigma_max = teacher_reference(config.teacher), noisiest
        shipped.base = teacher_reference(init) if init else None  # fine-tuned from that student
    if rank == 0:
        log.info("%s: %s, %d steps of batch %d (%dx%d crops), precision %s (%s), %d training images, %d for validation",
                 out, config.arch, config.steps, config.batch, config.crop, config.crop, precision,
                 "asked" if config.precision != "auto" else "chosen for this device",
                 len(samples), len(val_samples) or (len(held_out) if held_out else 0))
        log.info("best.safetensors is chosen by %s", selected_by)
    bar = tqdm(total=config.steps, initial=start, desc="train", unit="step", disable=not progress or rank != 0)
    step, loss_sum, loss_count, tick = start, 0.0, 0, time.perf_counter()
    t0, stopped_by = time.perf_counter(), None

    saved = {"step": start if resume and checkpoint.exists() else None}

    def save():
        saved["step"] = step
        if rank == 0:
            _save_checkpoint(checkpoint, model, ema, optimizer, scheduler, step, config, best)
            save_weights(shipped, out / "last.safetensors", step=step)

    def evaluate() -> dict[str, float]:
        """The validation scores of the weights as they are now; best.safetensors if they score best so far."""
        nonlocal best
        scores = validate(shipped, val_samples, config, device) if val_samples else {"val_selfsup": held_out.score(shipped, device)}
        if scores[select_key] > best:  # chosen on the network's own output, the headline
            best = scores[select_key]
            save_weights(shipped, out / "best.safetensors", step=step, **{k: f"{v:.3f}" for k, v in scores.items() if k != "val_ssim"})
        return scores

    # A fine-tune is scored before its first step too: if no step beats the weights it started from, those are the
    # best (an adaptation that does not pay hands back its start, not its least bad step).
    if init is not None and validating and start == 0 and rank == 0:
        scores = evaluate()
        _append_log(out / "log.csv", dict(step=0, **{k: f"{v:.4f}" for k, v in scores.items()}))
        history.append((0, scores[select_key]))  # as a resumed run reads it back from the log

    # Log lines (the time estimate, diagnostics) must not get glued to the progress bar.
    with _stop_on_signals() as stop, logging_redirect_tqdm(loggers=[logging.getLogger("lgbpn")]):
        for batch in loader:
            with autocast(precision, device):
                if targets is None:
                    loss = self_supervised_loss(net, batch.to(device, memory_format=layout))
                else:
                    x, wanted = batch
                    with told_noise(model, x):  # a noise-aware student hears each crop's own measured noise
                        loss = distill_loss(net, x.to(device, memory_format=layout), wanted.to(device))
            if not torch.isfinite(loss):
                bar.close()
                kept = (f"last good checkpoint {checkpoint} (step {saved['step']}) kept" if saved["step"] is not None
                        else "no checkpoint had been saved yet")
                raise TrainingDiverged(f"{out}: loss became {loss.item()} at step {step + 1}; stopped, {kept}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            if ema is not None:
                ema.update_parameters(model)
            step += 1
            if step == start + 1 and rank == 0:
                first = time.perf_counter() - t0
                log.info("first step %.1f s: about %s for %d steps", first, _duration(first * (end - start)), end - start)
            loss_sum, loss_count = loss_sum + loss.item(), loss_count + 1
            bar.update()
            row = None
            if step % config.log_every == 0 or step == end:
                now = time.perf_counter()
                rate = loss_count * config.batch / (now - tick)
                row = dict(step=step, loss=f"{loss_sum / loss_count:.4f}", lr=f"{scheduler.get_last_lr()[0]:.3g}",
                           crops_per_s=f"{rate:.2f}", seconds=f"{now - t0:.1f}")
                bar.set_postfix(loss=row["loss"], crops_s=row["crops_per_s"])
                loss_sum, loss_count, tick = 0.0, 0, now
            if validating and (step % config.val_every == 0 or step == config.steps):
                if rank == 0:
                    scores = evaluate()
                    row = {**(row or dict(step=step)), **{k: f"{v:.4f}" for k, v in scores.items()}}
                    history.append((step, scores[select_key]))
                    gain = convergence_gain(history, config.converged_gain, config.converged_window)
                    if gain is not None:
                        converged = dict(step=step, gain=gain)
                if world > 1:  # every rank stops with rank 0
                    flag = torch.tensor([converged is not None], device=device)
                    dist.broadcast(flag, 0)
                    converged = converged or ({} if flag.item() else None)
            if row and rank == 0:
                _append_log(out / "log.csv", row)
            if step % config.checkpoint_every == 0 or step == end:
                save()
            if stop["signal"] is not None:
                stopped_by = signal.Signals(stop["signal"]).name
                save()
                break
            if converged is not None:
                save()
                break
    bar.close()
    if stopped_by is None and step != end:
        save()
    if rank == 0 and not (out / "best.safetensors").exists():  # nothing validated (yet): the latest weights
        save_weights(shipped, out / "best.safetensors", step=step)
    if stopped_by is None and converged is None and step < config.steps:
        stopped_by = f"--stop-at {end}"
    if world > 1:
        dist.barrier()
    return dict(step=step, best_psnr=best, selected_by=selected_by, select_key=select_key, stopped_by=stopped_by,
                converged=converged, config=config,
                seconds=time.perf_counter() - t0,
                checkpoint=str(checkpoint), model=shipped, precision=precision)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
