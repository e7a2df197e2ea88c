"""LG-BPN: Local and Global Blind-Patch Network (Wang et al., CVPR 2023).

    noisy -> head 1x1 -+-> local:  DSPMC 9x9 (diamond blind patch) -> PD -> dilated residual blocks -> PD^-1 ---+
                       |                                                                                        |
                       +-> global: DSPMC 21x21 (even grid, blind patch) -> PD -> 6 DTB -> dilated 3x3 -> PD^-1 -+
                                                                                                                |
                                                                          clean <- tail 1x1 <- concat <---------+

PD factors differ per branch and per stage (training / first test pass / R3 refine passes); at
test time the masked kernels' sampling grid is shrunk by a per-branch ratio. A preset picks them.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from ..nn.blocks import ResidualDilatedBlock, fusion_tail
from ..nn.masked_conv import MaskedConv2d, diamond_mask, even_grid_mask
from ..nn.pd import pad_to_multiple, pd_batched, pd_batched_inverse, pd_tiled, pd_tiled_inverse
from ..nn.transformer import DilatedTransformerBlock
from .base import INFERENCE_STAGES, DenoisingNetwork
from .registry import register

# The paper's DSPMC kernels: 9x9 (local) and 21x21 (global, even grid), both blind to the L1
# diamond of radius 4 around their centre.
LOCAL_KERNEL, GLOBAL_KERNEL, BLIND_RADIUS = 9, 21, 4

# Why the blind patch survives PD. The DSPMC leaves the feature at pixel t blind to t's patch but
# reads pixels up to R = dspmc.reach(ratio) away (4 and 10 in training, 3 and 8 at SIDD's test
# ratios). After PD by f every conv of a branch body is 1x1 or dilated by d, so the output at a
# sub-image position mixes only features at multiples of d from it, i.e. features of pixels d*f*k
# away from the pixel p it predicts, and none of those reads p while d*f > R: local 2*4 > 4,
# 2*3 > 3, 2*2 > 2; global 3*5 > 10, 3*4 > 8, ...; every preset and stage passes
# (tests/test_models.py). Exceptions, as in the reference: the DTBs' channel attention pools every
# position into its maps; and near a border a copy of p can come back: through the DSPMC's reflect
# pad at the image border, the global branch's reflect pad at sub-image borders (reflection keeps
# parity, d = 2, but not residues mod 3), and in the tiled training layout a body reaching past
# its sub-image into the next one, one pixel off.
LOCAL_DILATION, GLOBAL_DILATION = 2, 3

# Peak memory of a test pass, fitted by a line in the branch width: floats per image pixel.
MEMORY_FIT_BASE, MEMORY_FIT_PER_CHANNEL = 400, 30


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
    # Ours, for weak noise (a good camera at moderate ISO): the DND refine pass's small PD factors and
    # grid for every pass. The blind patch shrinks to the nearest neighbours (as AT-BSN uses a smaller
    # blind spot at test time than in training), trading some correlated noise for detail.
    "light": {
        "train": StageSetting(4, 5),
        "test": StageSetting(2, 2, 0.40, 0.35),
        "refine": StageSetting(2, 2, 0.40, 0.35),
    },
}


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

    def min_size(self, factor: int, ratio: float | None) -> int:
        """Smallest side this branch takes at a test stage: each reflect pad narrower than what it
        pads, the masked conv's than the image, the batched layout's than a sub-image (side / factor)."""
        return max(self.dspmc.reach(ratio) + 1, factor * (self.test_pad + 1))


def local_branch(head_ch: int, ch: int, blocks: int) -> PDBranch:
    body = nn.Sequential(
        nn.ReLU(inplace=True),
        nn.Conv2d(ch, ch, 1),
        nn.ReLU(inplace=True),
        nn.Conv2d(ch, ch, 1),
        nn.ReLU(inplace=True),
        *[ResidualDilatedBlock(ch, LOCAL_DILATION) for _ in range(blocks)],
        nn.Conv2d(ch, ch, 1),
        nn.ReLU(inplace=True),
    )
    dspmc = MaskedConv2d(head_ch, ch, diamond_mask(LOCAL_KERNEL, BLIND_RADIUS))
    return PDBranch(dspmc, body, train_pad=2, test_pad=2)


class GlobalBody(nn.Module):
    def __init__(self, ch: int, blocks: int, heads: int, expansion: float, dilation: int = GLOBAL_DILATION):
        super().__init__()
        self.blocks = nn.Sequential(
            *[DilatedTransformerBlock(ch, heads, expansion, dilation) for _ in range(blocks)]
        )
        self.output = nn.Conv2d(ch, ch, 3, padding=dilation, dilation=dilation, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.blocks(x))


def global_branch(head_ch: int, ch: int, blocks: int, heads: int, expansion: float) -> PDBranch:
    dspmc = MaskedConv2d(head_ch, ch, even_grid_mask(GLOBAL_KERNEL, BLIND_RADIUS))
    return PDBranch(dspmc, GlobalBody(ch, blocks, heads, expansion), train_pad=0, test_pad=7)


@register(
    "lgbpn-s",
    "LG-BPN slim: same blind patches, PD and ratios; fewer channels and blocks for CPU training",
    base_ch=32,
    head_ch=16,
    local_blocks=4,
    global_blocks=2,
    normalize=True,
)
@register("lgbpn", "LG-BPN, the paper's full network (128 channels, 9 local blocks, 6 DTB)")
class LGBPN(DenoisingNetwork):
    blind_spot = True
    presets = tuple(PRESETS)

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
        super().__init__(preset, normalize)
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

    def branch_settings(self, stage: str) -> tuple[tuple[PDBranch, int, float | None], ...]:
        """(branch, PD factor, masked-kernel ratio) of the local and the global branch at `stage`."""
        s = PRESETS[self.preset][stage]
        return (self.local_branch, s.pd_local, s.ratio_local), (self.global_branch, s.pd_global, s.ratio_global)

    def branches(self, x: torch.Tensor, stage: str = "train") -> tuple[torch.Tensor, ...]:
        """The two branches' features; each pads the image to its own PD factor."""
        f = self.head(x)
        tiled = stage == "train"
        return tuple(branch(f, factor, ratio, tiled) for branch, factor, ratio in self.branch_settings(stage))

    def denoise(self, x: torch.Tensor, stage: str) -> torch.Tensor:
        return self.tail(torch.cat(self.branches(x, stage), dim=1))

    def min_size(self) -> int:
        return max(branch.min_size(factor, ratio) for stage in INFERENCE_STAGES
                   for branch, factor, ratio in self.branch_settings(stage))

    def floats_per_pixel(self) -> float:
        return MEMORY_FIT_BASE + MEMORY_FIT_PER_CHANNEL * self.local_branch.dspmc.out_channels

    def alignment(self) -> int:
        return math.lcm(*(factor for stage in INFERENCE_STAGES for _, factor, _ in self.branch_settings(stage)))

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
