"""Per-image adaptation (`lgbpn denoise --adapt N`): a few self-supervised steps on the inputs.

The training loss needs no clean image, so the loaded model can be fine-tuned on the very photos
it is about to denoise, adapting it to a camera it has never seen. A blind-spot network adapts
itself (`adapt_to_images`). A distilled student cannot (it sees the pixel, and would learn to copy
it). By default (`self_adapt_model`) it learns from Recorrupted-to-Recorrupted pairs of the photos
(Pang et al., CVPR 2021): input y + z, target y - z, with a noise sample z made from its own residual on
the same photo. Or (`--adapt-route teacher`) its teacher adapts and the student is fine-tuned on the
adapted teacher's outputs (`lgbpn distill --adapt`). Either way (`adapt_student`) the result keeps the
student's own output wherever that scores better (Denoiser's keep_base).
"""

import logging
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .data.crops import NoisyCrops
from .data.formats import Sample, centre_crop
from .errors import LgbpnError
from .io import atomic_write_bytes, read_image
from .layout import grey_to_rgb, to_channels_first
from .noise import BLOCK as NOISE_BLOCK
from .noise import residual_share, told_noise
from .options import ADAPT_ROUTES
from .precision import autocast, resolve_precision
from .scale import to_model_scale
from .train.trainer import self_supervised_loss

log = logging.getLogger(__name__)

ADAPT_LR = 5e-5
ADAPT_BATCH = 4
ADAPT_CROP = 120


# A student's own route (`--adapt-route self`): Recorrupted-to-Recorrupted steps, each of SELF_BATCH crops, from
# each photo's central SELF_WINDOW x SELF_WINDOW (bounded time and memory whatever the photos' size). Leave-camera-out
# (benchmarks/adapt_route.py, 22 unseen photos, 50 steps): 38.58 -> 38.88 dB with --ensemble 8 (docs/usage.md).
SELF_LR = 3e-5
# From the loco twin, with --ensemble 8, seeds 0/1/2: 8 crops a step 38.89/38.84/38.81 dB, 32 38.85/38.85/38.89,
# 64 38.88/38.86/38.87: the larger batch, steadier (about 40 s for 50 steps on 2 threads).
SELF_BATCH = 64
SELF_CROP = 128
SELF_WINDOW = 1024
SELF_SCALE_MAX = 3.0  # a residual that holds almost none of the noise (measured 1.04-2.18 on PolyU, 1.0-1.14 on SIDD)

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


def adapt_student(denoiser, paths: list[Path], steps: int, folder: Path, source: str, route: str = "self"):
    """Adapt a distilled student (`source`: its shipped name or weights file) to `paths` and save it as
    `folder`/ADAPTED_WEIGHTS; returns a Denoiser of it (same options). Route "self": `steps` steps on the photos'
    recorrupted pairs (self_adapt_model). Route "teacher": adapt its teacher for `steps` steps, then fine-tune the
    student from `source` on the adapted teacher's outputs for 2 x `steps` steps."""
    from .denoiser import Denoiser, weights_path
    from .weights import load_model, save_weights

    if route not in ADAPT_ROUTES:
        raise LgbpnError(f"adapt route {route!r}: expected one of {', '.join(ADAPT_ROUTES)}")
    if route == "teacher":
        paths = _readable(paths)
        return _adapt_through_teacher(denoiser, paths, steps, folder, source) if paths else denoiser
    photos = _photos_to_adapt(paths, denoiser.channels, smallest_to_adapt(denoiser.model))
    if not photos:
        return denoiser
    weights = folder / ADAPTED_WEIGHTS
    if weights.exists():
        raise LgbpnError(f"{weights}: already holds an adapted student; reuse it with --weights {weights}, "
                         f"or remove it to adapt again")
    model = load_model(weights_path(source)).to(denoiser.device)
    log.info("adapting to %d photos: the student %s, %d steps on their recorrupted pairs; saved to %s",
             len(photos), source, steps, weights)
    losses = self_adapt_model(model, photos, steps, resolve_precision(denoiser.options.precision, denoiser.device))
    model.base = source
    save_weights(model, weights, step=steps, adapted_by="recorrupted pairs of the photos")
    log.info("adapted student saved: %s (%d steps, loss %.2f -> %.2f); reuse it with --weights %s",
             weights, steps, losses[0], losses[-1], weights)
    return Denoiser.from_weights(weights, options=denoiser.options, progress=denoiser.progress)


def _photos_to_adapt(paths: list[Path], channels: int, needed: int) -> list[torch.Tensor]:
    """The (C, H, W) 0..255 central windows of the photos that can be read and are large enough, each read once; an
    unreadable file is reported (and counted) when it is denoised, a small one is named here."""
    photos = []
    for path in paths:
        try:
            pixels = _rgb_loader(path, channels)()
        except LgbpnError:
            continue
        photo = to_channels_first(to_model_scale(centre_crop(pixels, SELF_WINDOW)))
        if min(photo.shape[-2:]) >= needed:
            photos.append(photo)
        else:
            log.warning("%s: %d pixels on a side, too small to adapt to (at least %d); it is denoised all the same",
                        path, min(photo.shape[-2:]), needed)
    return photos


def self_adapt_model(model: torch.nn.Module, photos: list[torch.Tensor], steps: int, precision: str = "fp32",
                     seed: int = 0) -> list[float]:
    """Fine-tune a student in place on (C, H, W) 0..255 photos' own Recorrupted-to-Recorrupted pairs (each photo
    at least smallest_to_adapt(model) on a side); returns the losses. Input y + z, target y - z: z is the student's
    residual y - f(y) on the same photo, moved by at least a crop (so independent of the noise where it lands) and
    scaled to hold the whole noise (1 / residual_share). Then y + z and y - z carry uncorrelated noises, and the
    error to y - z is, up to a constant, the error to the clean photo (selfscore.py)."""
    device = next(model.parameters()).device
    model.eval()
    with torch.inference_mode():
        residuals = []
        for y in photos:
            with told_noise(model, y[None]):
                residuals.append(y - model(y[None].to(device))[0].float().cpu())
    scales = [1 / max(residual_share(y, r), 1 / SELF_SCALE_MAX) for y, r in zip(photos, residuals)]
    crop = min(SELF_CROP, min(min(y.shape[-2:]) for y in photos) // 2)
    gen = torch.Generator().manual_seed(seed)

    def pair_loss(_step: int) -> torch.Tensor:
        x, target = (t.to(device) for t in recorrupted_pairs(photos, residuals, scales, crop, SELF_BATCH, gen))
        with told_noise(model, x), autocast(precision, device):
            out = model(x)
        return (out.float() - target).square().mean()

    return _fine_tune(model, SELF_LR, steps, pair_loss)


def smallest_to_adapt(model: torch.nn.Module) -> int:
    """The smallest side of a photo that self_adapt_model learns from: two crops apart, each measurable (noise.py)."""
    return max(2 * NOISE_BLOCK, 2 * model.min_size())


def recorrupted_pairs(photos: list[torch.Tensor], residuals: list[torch.Tensor], scales: list[float], crop: int,
                      count: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` random crops (B, C, crop, crop) of the photos, as inputs y + z and targets y - z: z the photo's
    residual times its scale, rolled by at least `crop` on each axis (the photos are at least 2 x `crop`)."""
    draw = lambda low, high: int(torch.randint(low, high, (1,), generator=gen))  # noqa: E731
    inputs, targets = [], []
    for _ in range(count):
        i = draw(0, len(photos))
        h, w = photos[i].shape[-2:]
        top, left = draw(0, h - crop + 1), draw(0, w - crop + 1)
        shift = (draw(crop, h - crop + 1), draw(crop, w - crop + 1))
        window = (slice(None), slice(top, top + crop), slice(left, left + crop))
        z = scales[i] * torch.roll(residuals[i], shift, (-2, -1))[window]
        inputs.append(photos[i][window] + z)
        targets.append(photos[i][window] - z)
    return torch.stack(inputs), torch.stack(targets)


def _adapt_through_teacher(denoiser, paths: list[Path], steps: int, folder: Path, source: str):
    """adapt_student's route "teacher"."""
    from .denoiser import Denoiser, weights_path
    from .train.config import ADAPT_RECIPE, ADAPT_STUDENT_STEPS, make_config
    from .train.distill import run_distillation
    from .weights import read_weights

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

    def blind_spot_loss(step: int) -> torch.Tensor:
        return self_supervised_loss(model, torch.stack([crops[step * ADAPT_BATCH + j] for j in range(ADAPT_BATCH)]).to(device))

    return _fine_tune(model, ADAPT_LR, steps, blind_spot_loss)


def _fine_tune(model: torch.nn.Module, lr: float, steps: int, step_loss) -> list[float]:
    """Adam on `model` in place for `steps` steps of `step_loss(step)`; returns the losses, the model left in eval mode."""
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for step in tqdm(range(steps), desc="adapt", unit="step"):
        loss = step_loss(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return losses
