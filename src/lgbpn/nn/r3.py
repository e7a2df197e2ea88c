"""R3, random-replacing refinement (AP-BSN): a test-time ensemble of blind-spot passes.

The first test pass gives a denoised base. Each refine pass replaces a random 16% of its values by
the noisy input and runs the network again (at the refine stage's PD factors); the mean of the
passes is the output. The blind spot only ever sees noisy pixels it does not predict, so the
refinement adds detail without learning the identity.

The replacement masks are a pure function of (seed, pass, image, channel, row, column): a tile of
a large image draws exactly the masks the whole image would, so tiling does not change R3.
"""

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ..options import R3_PASSES, R3_PROB

if TYPE_CHECKING:
    from ..models.base import DenoisingNetwork

R3_PAD = 2


def _splitmix64(z: np.ndarray) -> np.ndarray:
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def r3_masks(
    shape: tuple[int, int, int, int],
    passes: int = R3_PASSES,
    prob: float = R3_PROB,
    seed: int = 0,
    origin: tuple[int, int] = (0, 0),
) -> torch.Tensor:
    """(passes, B, C, H, W) bool masks for pixels at rows origin[0]+..., cols origin[1]+... ."""
    b, c, h, w = shape
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps by design
        t, bi, ci, y, x = np.ix_(*(np.arange(n, dtype=np.uint64) for n in (passes, b, c, h, w)))
        y = y + np.uint64(origin[0])
        x = x + np.uint64(origin[1])
        key = _splitmix64(np.uint64(seed) ^ (t << np.uint64(56)) ^ (bi << np.uint64(48)) ^ (ci << np.uint64(44)))
        key = _splitmix64(key ^ (y << np.uint64(22)) ^ x)
    threshold = np.uint64(int(prob * 2.0**64) if prob < 1 else 2**64 - 1)
    return torch.from_numpy(key < threshold)


def denoise_r3(
    model: "DenoisingNetwork",
    x: torch.Tensor,
    masks: torch.Tensor | None,
    pass_batch: int = R3_PASSES,
) -> torch.Tensor:
    """Test pass, then (if masks are given) the R3 passes, batched `pass_batch` at a time.

    `masks` has shape (passes, *padded x shape) where padded = model.pad_for_inference(x). A network
    that is not blind-spot (`model.blind_spot` false) would see the noisy pixels R3 puts back: for
    it R3 does not apply, and the test pass is the result.
    """
    h, w = x.shape[-2:]
    xp = model.pad_for_inference(x)
    base = model(xp, stage="test")
    if masks is None or not model.blind_spot:
        return base[..., :h, :w]
    masks = masks.to(x.device)
    total = torch.zeros_like(base)
    for chunk in masks.split(pass_batch):
        mixed = torch.where(chunk, xp, base).flatten(0, 1)
        out = model(F.pad(mixed, (R3_PAD,) * 4, mode="reflect"), stage="refine")
        out = out[..., R3_PAD:-R3_PAD, R3_PAD:-R3_PAD]
        total += out.unflatten(0, chunk.shape[:2]).sum(0)
    return (total / len(masks))[..., :h, :w]
