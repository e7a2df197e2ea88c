"""LG-BPN: Local and Global Blind-Patch Network (Wang et al., CVPR 2023).

    noisy --head 1x1--+--> local branch:  DSPMC 9x9 (diamond blind patch) -> PD -> dilated residual blocks -> PD^-1 --+
                      |                                                                                                concat -> tail 1x1 -> clean
                      +--> global branch: DSPMC 21x21 (even grid, blind patch) -> PD -> 6 DTB -> dilated 3x3 -> PD^-1 --+

PD factors differ per branch and per stage (training / first test pass / R3 refine passes); at
test time the masked kernels' sampling grid is shrunk by a per-branch ratio. A preset picks them.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from ..nn.masked_conv import MaskedConv2d, diamond_mask, even_grid_mask
from ..nn.pd import pad_to_multiple, pd_batched, pd_batched_inverse, pd_tiled, pd_tiled_inverse
from ..nn.transformer import DilatedTransformerBlock

INPUT_MEAN, INPUT_STD = 110.0, 60.0  # typical 8-bit photo statistics, for `normalize=True`


@dataclass(frozen=True)
class StageSetting:
    pd_local: int
    pd_global: int
    ratio_local: float | None = None  # None: plain masked conv (training)
    ratio_global: float | None = None


# The reference's `SIDD=True` / `SIDD=False` configurations.
PRESETS: dict[str, dict[str, StageSetting]] = {
    "sidd": {
        "train": StageSetting(4, 5),
        "test": StageSetting(3, 4, 0.72, 0.80),
        "refine": StageSetting(2, 4, 0.46, 0.43),
    },
    "dnd": {
        "train": StageSetting(4, 5),
        "test": StageSetting(2, 4, 0.50, 0.65),
        "refine": StageSetting(2, 2, 0.40, 0.35),
    },
}


class ResidualDilatedBlock(nn.Module):
    """x + 1x1(ReLU(3x3 dilated conv(x))): the DCl block of AP-BSN."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def fusion_tail(ch: int, out_ch: int) -> nn.Sequential:
    """1x1 convs fusing the two concatenated branches (2*ch channels) into the output."""
    return nn.Sequential(
        nn.Conv2d(ch * 2, ch, 1),
        nn.ReLU(inplace=True),
        nn.Conv2d(ch, ch // 2, 1),
        nn.ReLU(inplace=True),
        nn.Conv2d(ch // 2, ch // 2, 1),
        nn.ReLU(inplace=True),
        nn.Conv2d(ch // 2, out_ch, 1),
    )


class PDBranch(nn.Module):
    """DSPMC on full resolution, then PD -> body -> inverse PD.

    Training uses the tiled PD layout with zero gaps of `train_pad`; test stages use the batched
    layout with reflect padding `test_pad`, as the reference does.
    """

    def __init__(self, dspmc: MaskedConv2d, body: nn.Module, train_pad: int, test_pad: int):
        super().__init__()
        self.dspmc = dspmc
        self.body = body
        self.train_pad = train_pad
        self.test_pad = test_pad

    def forward(self, x: torch.Tensor, factor: int, ratio: float | None, tiled: bool) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = self.dspmc(pad_to_multiple(x, factor), ratio)
        if factor == 1:
            x = self.body(x)
        elif tiled:
            x = pd_tiled_inverse(self.body(pd_tiled(x, factor, self.train_pad)), factor, self.train_pad)
        else:
            x = pd_batched_inverse(self.body(pd_batched(x, factor, self.test_pad)), factor, self.test_pad)
        return x[..., :h, :w]


def local_branch(head_ch: int, ch: int, blocks: int) -> PDBranch:
    body = nn.Sequential(
        nn.ReLU(inplace=True),
        nn.Conv2d(ch, ch, 1),
        nn.ReLU(inplace=True),
        nn.Conv2d(ch, ch, 1),
        nn.ReLU(inplace=True),
        *[ResidualDilatedBlock(ch, dilation=2) for _ in range(blocks)],
        nn.Conv2d(ch, ch, 1),
        nn.ReLU(inplace=True),
    )
    return PDBranch(MaskedConv2d(head_ch, ch, diamond_mask(9)), body, train_pad=2, test_pad=2)


class GlobalBody(nn.Module):
    def __init__(self, ch: int, blocks: int, heads: int, expansion: float, dilation: int = 3):
        super().__init__()
        self.blocks = nn.Sequential(
            *[DilatedTransformerBlock(ch, heads, expansion, dilation) for _ in range(blocks)]
        )
        self.output = nn.Conv2d(ch, ch, 3, padding=dilation, dilation=dilation, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.blocks(x))


def global_branch(head_ch: int, ch: int, blocks: int, heads: int, expansion: float) -> PDBranch:
    dspmc = MaskedConv2d(head_ch, ch, even_grid_mask(21, radius=4))
    return PDBranch(dspmc, GlobalBody(ch, blocks, heads, expansion), train_pad=0, test_pad=7)


class LGBPN(nn.Module):
    def __init__(
        self,
        in_ch: int = 3,
        base_ch: int = 128,
        head_ch: int = 24,
        local_blocks: int = 9,
        global_blocks: int = 6,
        heads: int = 2,
        ffn_expansion: float = 2.66,
        preset: str = "sidd",
        normalize: bool = False,
    ):
        super().__init__()
        self.preset = preset
        # The reference feeds raw 0..255 values; centring them lets a small network train in far
        # fewer steps (an affine map of the input: blindness is unaffected).
        self.normalize = normalize
        self.head = nn.Sequential(nn.Conv2d(in_ch, head_ch, 1), nn.ReLU(inplace=True))
        self.local_branch = local_branch(head_ch, base_ch, local_blocks)
        self.global_branch = global_branch(head_ch, base_ch, global_blocks, heads, ffn_expansion)
        self.tail = fusion_tail(base_ch, in_ch)

    @property
    def preset(self) -> str:
        return self._preset

    @preset.setter
    def preset(self, name: str) -> None:
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        self._preset = name

    def branches(self, x: torch.Tensor, stage: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        s = PRESETS[self.preset][stage]
        f = self.head(x)
        tiled = stage == "train"
        return (
            self.local_branch(f, s.pd_local, s.ratio_local, tiled),
            self.global_branch(f, s.pd_global, s.ratio_global, tiled),
        )

    def forward(self, x: torch.Tensor, stage: str = "train") -> torch.Tensor:
        if self.normalize:
            x = (x - INPUT_MEAN) / INPUT_STD
        out = self.tail(torch.cat(self.branches(x, stage), dim=1))
        return out * INPUT_STD + INPUT_MEAN if self.normalize else out

    def pad_for_inference(self, x: torch.Tensor) -> torch.Tensor:
        return x  # each branch pads to its own PD factor

    def min_size(self) -> int:
        """Smallest side every test stage accepts (reflect pads must stay inside the image)."""
        sizes = [2 * 10 + 1]
        for stage in ("test", "refine"):
            s = PRESETS[self.preset][stage]
            sizes += [s.pd_local * (self.local_branch.test_pad + 1), s.pd_global * (self.global_branch.test_pad + 1)]
        return max(sizes)

    def floats_per_pixel(self) -> float:
        """Peak test-time activations per image pixel (fitted to measured peak memory)."""
        return 400 + 30 * self.local_branch.dspmc.out_channels

    def alignment(self) -> int:
        """Tile origins must be multiples of this for tiles to see the same PD phases."""
        factors = [getattr(PRESETS[self.preset][st], f) for st in ("test", "refine") for f in ("pd_local", "pd_global")]
        return math.lcm(*factors)

    # Reference checkpoints (Wang-XIaoDingdd/LGBPN) name the same tensors differently.
    REFERENCE_KEY_MAP = (
        ("bsn.branch1.Maskconv.", "local_branch.dspmc."),
        ("bsn.branch1.body.", "local_branch.body."),
        ("bsn.branch2.Maskconv.", "global_branch.dspmc."),
        ("bsn.branch2.body.encoder_level1.", "global_branch.body.blocks."),
        ("bsn.branch2.body.output.", "global_branch.body.output."),
        ("bsn.", ""),
        (".norm1.body.", ".norm1."),
        (".norm2.body.", ".norm2."),
    )
    REFERENCE_IGNORED = (".mask", ".test_conv.")
