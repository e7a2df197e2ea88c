"""AP-BSN: Asymmetric PD Blind-Spot Network (Lee et al., CVPR 2022), the baseline LG-BPN improves on.

    noisy -> PD(5 train / 2 test, zero gaps of 2, tiled) -> DBSNl -> PD^-1
    DBSNl: head 1x1 -> two branches (centre-masked 3x3 + dilation-2 blocks, centre-masked 5x5 +
           dilation-3 blocks) -> concat -> tail 1x1
R3 refine passes run DBSNl on the full-resolution image, without PD.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..nn.blocks import ResidualDilatedBlock, fusion_tail
from ..nn.masked_conv import MaskedConv2d, centre_mask
from ..nn.pd import pad_to_multiple, pd_tiled, pd_tiled_inverse
from ..nn.r3 import R3_PAD
from .base import DenoisingNetwork
from .registry import register

# Peak memory of a test pass, fitted by a line in the branch width: floats per image pixel.
MEMORY_FIT_BASE, MEMORY_FIT_PER_CHANNEL = 125, 5.5


def dilated_branch(ch: int, dilation: int, blocks: int) -> nn.Sequential:
    # DBSN's rule: a centre-masked kernel of half-width dilation - 1 reads no multiple of
    # `dilation` but 0, so no chain of the dilated convs after it leads back to the centre.
    return nn.Sequential(
        MaskedConv2d(ch, ch, centre_mask(2 * dilation - 1), padding_mode="zeros"),
        nn.ReLU(inplace=True),
        nn.Conv2d(ch, ch, 1),
        nn.ReLU(inplace=True),
        nn.Conv2d(ch, ch, 1),
        nn.ReLU(inplace=True),
        *[ResidualDilatedBlock(ch, dilation) for _ in range(blocks)],
        nn.Conv2d(ch, ch, 1),
        nn.ReLU(inplace=True),
    )


class DBSNl(nn.Module):
    def __init__(self, in_ch: int = 3, base_ch: int = 128, blocks: int = 9):
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(in_ch, base_ch, 1), nn.ReLU(inplace=True))
        self.branch1 = dilated_branch(base_ch, 2, blocks)
        self.branch2 = dilated_branch(base_ch, 3, blocks)
        self.tail = fusion_tail(base_ch, in_ch)

    def branches(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.head(x)
        return self.branch1(x), self.branch2(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(torch.cat(self.branches(x), dim=1))


@register("apbsn-s", "AP-BSN slim, the baseline at lgbpn-s's budget", base_ch=32, blocks=4, normalize=True)
@register("apbsn", "AP-BSN (DBSNl, 128 channels, 9 blocks per branch), the baseline")
class APBSN(DenoisingNetwork):
    blind_spot = True

    def __init__(
        self,
        in_ch: int = 3,
        base_ch: int = 128,
        blocks: int = 9,
        pd_train: int = 5,
        pd_test: int = 2,
        pd_pad: int = 2,
        preset: str = "sidd",  # the reference uses the same factors for SIDD and DND
        normalize: bool = False,
    ):
        super().__init__(preset, normalize)
        self.bsn = DBSNl(in_ch, base_ch, blocks)
        self.pd_train, self.pd_test, self.pd_pad = pd_train, pd_test, pd_pad

    def denoise(self, x: torch.Tensor, stage: str) -> torch.Tensor:
        if stage == "refine":
            return self.bsn(x)
        factor = self.pd_train if stage == "train" else self.pd_test
        h, w = x.shape[-2:]
        # The reference requires multiples of the factor in training; padding keeps any crop size usable.
        x = pad_to_multiple(x, factor)
        pd = self.bsn(pd_tiled(x, factor, self.pd_pad))
        return pd_tiled_inverse(pd, factor, self.pd_pad)[..., :h, :w]

    def pad_for_inference(self, x: torch.Tensor) -> torch.Tensor:
        # As the reference: zeros appended, and R3 runs on the padded image.
        h, w = x.shape[-2:]
        return F.pad(x, (0, -w % self.pd_test, 0, -h % self.pd_test))

    def min_size(self) -> int:
        return R3_PAD + 1  # R3 reflect-pads the image by R3_PAD for its refine passes

    def floats_per_pixel(self) -> float:
        return MEMORY_FIT_BASE + MEMORY_FIT_PER_CHANNEL * self.bsn.head[0].out_channels

    def alignment(self) -> int:
        return self.pd_test

    # Reference checkpoints (wooseoklee4/AP-BSN) wrap each branch Sequential in a module as `.body`.
    REFERENCE_KEY_MAP = (("bsn.branch1.body.", "bsn.branch1."), ("bsn.branch2.body.", "bsn.branch2."))
    REFERENCE_IGNORED = (".mask",)
