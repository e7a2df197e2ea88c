"""How strongly to denoise: one number from 0 (the input) through 1 (the default output) to
options.MAX_STRENGTH (2).

    S <= 1:  out = noisy + S (d1 - noisy),      d1 = the denoiser's output on the input
    S >  1:  out = d1 + (S - 1) (d2 - d1),      d2 = the denoiser's output on d1

Below 1 the input's noise (and texture) comes back in proportion; above 1 the image is denoised a
second time, which removes what the first pass left (noise the network took for texture) at the
price of fine detail. Both halves are straight lines that meet at 1, so the output moves steadily
with S. This is the one place that defines strength: a noise-level-aware network could take it as
the level it is told instead.
"""

from collections.abc import Callable

import torch


def apply_strength(denoise: Callable[[torch.Tensor], torch.Tensor], noisy: torch.Tensor, strength: float) -> torch.Tensor:
    """`denoise` applied to `noisy` with this strength (0: `noisy` itself, without running `denoise`; 1: its output)."""
    if strength == 0:
        return noisy
    once = denoise(noisy)
    if strength == 1:
        return once
    if strength < 1:
        return torch.lerp(noisy, once, strength)
    return torch.lerp(once, denoise(once), strength - 1)
