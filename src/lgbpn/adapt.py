"""Per-image adaptation (`lgbpn denoise --adapt N`): a few self-supervised steps on the inputs.

The training loss needs no clean image, so the loaded model can be fine-tuned on the very photos
it is about to denoise, adapting it to a camera it has never seen. A blind-spot network adapts
itself (`adapt_to_images`). A distilled student cannot (it sees the pixel, and would learn to copy
it), so it takes the whole route (`adapt_student`): its teacher adapts, the student is fine-tuned on
the adapted teacher's outputs (`lgbpn distill --adapt`), and the result keeps the student's own
output wherever that scores better (Denoiser's keep_base).
"""

import logging
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .data.crops import NoisyCrops
from .data.formats import Sample
from .errors import LgbpnError
from .io import atomic_write_bytes, read_image
from .layout import grey_to_rgb
from .train.trainer import self_supervised_loss

log = logging.getLogger(__name__)

ADAPT_LR = 5e-5
ADAPT_BATCH = 4
ADAPT_CROP = 120


ADAPTED_WEIGHTS = "lgbpn-adapted.safetensors"  # beside the outputs of `lgbpn denoise --adapt N`
ADAPT_RUN = "lgbpn-adapt"  # and the run folder it comes from (adapted teacher, targets, log)


def _readable(paths: list[Path]) -> list[Path]:
    """The paths that can be read (an unreadable file is reported, and counted, when it is denoised)."""
    good = []
    for p in paths:
        try:
            read_image(p)
        except LgbpnError:
            continue
        good.append(p)
    return good


def adapt_student(denoiser, paths: list[Path], steps: int, folder: Path, source: str):
    """The whole route for a distilled student (`source`: its shipped name or weights file): adapt its
    teacher to `paths` for `steps` steps, fine-tune the student from `source` on the adapted teacher's
    outputs for 2 x `steps` steps, save it as `folder`/ADAPTED_WEIGHTS; returns a Denoiser of it (same options)."""
    from .denoiser import Denoiser, weights_path
    from .train.config import ADAPT_RECIPE, ADAPT_STUDENT_STEPS, make_config
    from .train.distill import run_distillation
    from .weights import read_weights

    paths = _readable(paths)
    if not paths:
        return denoiser
    run, weights = folder / ADAPT_RUN, folder / ADAPTED_WEIGHTS
    if (run / "last.pt").exists():
        raise LgbpnError(f"{run}: already holds an adaptation run; reuse its result with --weights {weights}, "
                         f"or remove {run} to adapt again")
    teacher_source = denoiser.model.teacher
    if teacher_source is None:
        raise LgbpnError(f"{source}: a student without a teacher cannot adapt (no blind-spot network to learn from)")
    settings = {k: v for k, v in denoiser.model.arch_config.items() if k != "preset"}
    config = make_config(ADAPT_RECIPE, arch=denoiser.model.arch_name, model=settings, teacher=teacher_source,
                         steps=ADAPT_STUDENT_STEPS * steps)
    log.info("adapting to %d photos: the teacher %s (%d steps), then the student %s (%d steps); saved to %s",
             len(paths), teacher_source, steps, source, config.steps, weights)
    summary = run_distillation(paths, run, config, steps, init=weights_path(source))
    atomic_write_bytes(weights, (run / "best.safetensors").read_bytes())
    log.info("adapted student saved: %s (step %s, chosen by %s); reuse it with --weights %s",
             weights, read_weights(weights)[1].get("step", "?"), summary["selected_by"], weights)
    return Denoiser.from_weights(weights, options=denoiser.options, progress=denoiser.progress)


def _rgb_loader(path: Path, channels: int):
    def load() -> np.ndarray:
        pixels = read_image(path).pixels
        return grey_to_rgb(pixels) if channels == 3 else pixels

    return load


def adapt_to_images(denoiser, paths: list[Path], steps: int, seed: int = 0) -> list[float]:
    """Fine-tune `denoiser.model` in place on crops of `paths`; returns the losses."""
    samples, sides = [], []
    for p in paths:
        try:
            sides.append(min(read_image(p).pixels.shape[:2]))
        except LgbpnError:
            continue  # an unreadable file is reported (and counted) when it is denoised
        samples.append(Sample(str(p), _rgb_loader(p, denoiser.channels), None))
    if not samples:
        return []
    return adapt_model(denoiser.model, samples, steps, min(sides), seed)


def adapt_model(model: torch.nn.Module, samples: list[Sample], steps: int, smallest_side: int, seed: int = 0) -> list[float]:
    """Fine-tune `model` in place (on its device) on crops of `samples`; returns the losses."""
    crops = NoisyCrops(samples, crop=max(40, min(ADAPT_CROP, smallest_side)), seed=seed)
    device = next(model.parameters()).device
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=ADAPT_LR)
    losses = []
    for step in tqdm(range(steps), desc="adapt", unit="step"):
        x = torch.stack([crops[step * ADAPT_BATCH + j] for j in range(ADAPT_BATCH)]).to(device)
        loss = self_supervised_loss(model, x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return losses
