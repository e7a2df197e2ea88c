"""Blocks LG-BPN and AP-BSN share: AP-BSN's dilated residual block, the 1x1 fusion tail, and the
optional centring of the 0..255 input."""

import torch
import torch.nn as nn

# Typical 8-bit photo statistics. The reference feeds raw 0..255 values; centring them lets a small
# network train in far fewer steps. The map is per pixel, so it keeps a blind-spot network blind.
INPUT_MEAN, INPUT_STD = 110.0, 60.0


def centre_input(x: torch.Tensor) -> torch.Tensor:
    return (x - INPUT_MEAN) / INPUT_STD


def uncentre_output(y: torch.Tensor) -> torch.Tensor:
    return y * INPUT_STD + INPUT_MEAN


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
