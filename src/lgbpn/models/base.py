"""The contract every network of the package keeps.

Tiling (`tiling.py`), R3 (`nn/r3.py`), weights (`weights.py`), training and the bench use a network
only through `DenoisingNetwork`, so an architecture that subclasses it and registers
(`models/registry.py`) runs everywhere.
"""

from abc import ABC, abstractmethod

import torch
import torch.nn as nn

from ..nn.blocks import centre_input, uncentre_output
from ..options import DEFAULT_TILE

# "train": the training pass; "test": the first inference pass; "refine": R3's passes (nn/r3.py).
STAGES = ("train", "test", "refine")
INFERENCE_STAGES = ("test", "refine")


class DenoisingNetwork(nn.Module, ABC):
    """Noisy (B, C, H, W) batch on the 0..255 scale -> denoised batch of the same shape.

    A blind-spot network (`blind_spot = True`) never sees the pixel it predicts, so it trains on
    the noisy images alone, and its stages may differ (LG-BPN and AP-BSN change PD factors and
    masked-kernel ratios between them). An ordinary network (a student distilled from a blind-spot
    one, say) sees every pixel: the stage changes nothing and R3 does not apply to it.

    Constructors take `preset` (the trainer, `--preset` and the bench pass it to every
    architecture) and `normalize` (centre the input, see nn/blocks.py). `build_model` records the
    registered name and the settings on the instance as `arch_name` and `arch_config`; weight files
    store both.
    """

    blind_spot: bool = False
    presets: tuple[str, ...] = ()  # test-time settings to choose from (empty: one fixed setting)
    # Set on weights distilled from corrected teacher outputs: the network's output already holds our
    # output corrections, so the denoiser does not apply them again (a weights-file property).
    corrections_learnt: bool = False
    # Set on a distilled student: its teacher (a shipped name or a weights file) and the noise sigma of
    # its noisiest training input (an image, or one under the heaviest extra noise of its crops);
    # heavier noise goes to the teacher (noise.STUDENT_NOISE_MARGIN).
    teacher: str | None = None
    noise_sigma_max: float | None = None
    # A noise-aware network is told the noise sigma (0..255) of each image in the batch as `noise_level`, a
    # (B,) tensor: `tiling.denoise_tiled` measures it on the whole image, training on each crop.
    noise_aware: bool = False
    # Set on a student fine-tuned from another (`--adapt`): that one (a shipped name or a weights file),
    # whose output the denoiser keeps wherever it scores better (selfscore.py).
    base: str | None = None
    arch_name: str
    arch_config: dict

    # The original authors' checkpoints: (their name part, ours) replacements applied in order, and
    # name parts of the entries we derive instead of loading (masks, aliases).
    REFERENCE_KEY_MAP: tuple[tuple[str, str], ...] = ()
    REFERENCE_IGNORED: tuple[str, ...] = ()

    def __init__(self, preset: str = "sidd", normalize: bool = False):
        super().__init__()
        self.preset = preset
        self.normalize = normalize

    def forward(self, x: torch.Tensor, stage: str | None = None) -> torch.Tensor:
        """Denoise `x` at `stage`; None follows the mode: "train" in train mode, "test" in eval mode."""
        if stage is None:
            stage = "train" if self.training else "test"
        elif stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; choose one of {STAGES}")
        if self.normalize:
            return uncentre_output(self.denoise(centre_input(x), stage))
        return self.denoise(x, stage)

    @abstractmethod
    def denoise(self, x: torch.Tensor, stage: str) -> torch.Tensor:
        """The network proper, on the (centred, with `normalize`) input."""

    def context(self) -> int:
        """How far (pixels) an output pixel's input reaches, where that is bounded and known: tiles that
        overlap by at least this much are exact. 0: not known (the overlap asked for is used)."""
        return 0

    def default_tile(self) -> int:
        """The tile size that inference uses unless told another (options.DEFAULT_TILE)."""
        return DEFAULT_TILE

    def pad_for_inference(self, x: torch.Tensor) -> torch.Tensor:
        """The image as the inference passes take it; R3 draws its masks at this shape and the
        caller crops the result back to the input's size. Default: unchanged."""
        return x

    def min_size(self) -> int:
        """Smallest height and width the inference stages accept; tiling mirrors a smaller window
        up to it. Default: any."""
        return 1

    def alignment(self) -> int:
        """Tile origins are multiples of this, so that a tile is processed as the same part of
        the whole image would be (PD phases). Default: any origin."""
        return 1

    @abstractmethod
    def floats_per_pixel(self) -> float:
        """Peak activations of one test pass, in floats per input pixel: tiling sizes its tiles,
        and how many R3 passes share a call, from it."""

    def convert_reference_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A state_dict of the original authors' implementation under this network's names,
        without the entries this network derives (`load_state_dict` then takes it)."""
        renamed = {}
        for key, value in state.items():
            if any(part in key for part in self.REFERENCE_IGNORED):
                continue
            for old, new in self.REFERENCE_KEY_MAP:
                key = key.replace(old, new)
            renamed[key] = value
        return renamed
