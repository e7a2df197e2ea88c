"""A small ordinary (non-blind) U-Net, the student distilled from a blind-spot teacher.

    noisy -> 3x3 -> block(c) -----------------------------------------------+ -> block(c) -> 3x3 -> + noisy
                     | down 2x2/2                                 up 1x1+PS |
                     +-> block(2c) -------------------------+ -> block(2c) -+
                          | down 2x2/2          up 1x1+PS   |
                          +-> block(4c) x middle_blocks ----+

With `unshuffle` 2 (`unet-half`) the network runs on the image's 2x2 pixel-unshuffled sub-images
(12 channels at half resolution, as FFDNet does) and shuffles its output back: a quarter of the
positions, so about 3x faster at 32 channels.

It sees every pixel, the centre included, so it can keep detail that a blind-spot network must
guess from the neighbours; it learns the teacher's outputs (`lgbpn distill`). Plain 3x3 convs and
ReLUs, which oneDNN runs near the matmul rate on a CPU, and about 68k multiply-adds per pixel at
24 channels (LG-BPN: ~5M, lgbpn-s: ~0.3M).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..options import STUDENT_TILE
from .base import DenoisingNetwork
from .registry import register

LEVELS = 3  # two 2x downsamplings: sizes are padded to a multiple of 4
SCALE = 2 ** (LEVELS - 1)
# Peak activations of one pass, floats per pixel per base channel (measured: ~6 full-resolution
# feature maps alive at once, plus the smaller levels).
FLOATS_PER_PIXEL_PER_CHANNEL = 10
NOISE_LEVEL_SCALE = 25.0  # a noise-aware student sees sigma / this as one more input channel: ~0..1 for photos


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def upsample(in_ch: int, out_ch: int) -> nn.Sequential:
    """1x1 conv to 4x the channels, then pixel shuffle: a cheap learned 2x upsampling."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch * 4, 1), nn.PixelShuffle(2))


@register("unet", "Ordinary small U-Net (not blind), the student distilled from a blind-spot teacher",
          base_ch=24, middle_blocks=2, normalize=True)
@register("unet-half", "The student U-Net on the 2x2 pixel-unshuffled image (12 channels at half resolution): "
          "about 3x faster than unet", base_ch=32, middle_blocks=2, normalize=True, unshuffle=2)
class UNetStudent(DenoisingNetwork):
    blind_spot = False

    def __init__(self, in_ch: int = 3, base_ch: int = 24, middle_blocks: int = 2, preset: str = "sidd",
                 normalize: bool = True, unshuffle: int = 1, noise_aware: bool = False):
        super().__init__(preset=preset, normalize=normalize)
        c = base_ch
        self.unshuffle = unshuffle
        self.noise_aware = noise_aware
        self.noise_level: torch.Tensor | None = None
        self.inp = nn.Conv2d(in_ch * unshuffle**2 + noise_aware, c, 3, padding=1)
        self.enc1 = ResidualBlock(c)
        self.down1 = nn.Conv2d(c, 2 * c, 2, stride=2)
        self.enc2 = ResidualBlock(2 * c)
        self.down2 = nn.Conv2d(2 * c, 4 * c, 2, stride=2)
        self.middle = nn.Sequential(*[ResidualBlock(4 * c) for _ in range(middle_blocks)])
        self.up2 = upsample(4 * c, 2 * c)
        self.dec2 = ResidualBlock(2 * c)
        self.up1 = upsample(2 * c, c)
        self.dec1 = ResidualBlock(c)
        self.out = nn.Conv2d(c, in_ch * unshuffle**2, 3, padding=1)

    def denoise(self, x: torch.Tensor, stage: str) -> torch.Tensor:
        h, w = x.shape[-2:]
        scale = SCALE * self.unshuffle
        padded = F.pad(x, (0, -w % scale, 0, -h % scale), mode="reflect")
        z = F.pixel_unshuffle(padded, self.unshuffle)
        if self.noise_aware:
            z = torch.cat([z, self._level_map(z)], 1)
        e1 = self.enc1(self.inp(z))
        e2 = self.enc2(self.down1(e1))
        m = self.middle(self.down2(e2))
        d2 = self.dec2(self.up2(m) + e2)
        d1 = self.dec1(self.up1(d2) + e1)
        return (padded + F.pixel_shuffle(self.out(d1), self.unshuffle))[..., :h, :w]  # a residual: the network predicts the noise

    def _level_map(self, z: torch.Tensor) -> torch.Tensor:
        """(B, 1, h, w): each image's told noise level, scaled, as a constant plane."""
        if self.noise_level is None:
            raise RuntimeError("a noise-aware network runs only with the noise level of its input set (noise_level)")
        level = self.noise_level.to(z.device, z.dtype).reshape(-1, 1, 1, 1).expand(z.shape[0], 1, *z.shape[-2:])
        return level / NOISE_LEVEL_SCALE

    def context(self) -> int:
        # Measured (tests/test_models.py): a pixel reaches 15 + 8 * middle_blocks pixels of the (unshuffled)
        # grid it runs on; one alignment more covers every phase of the pooling grids.
        return self.unshuffle * (15 + 8 * len(self.middle)) + self.alignment()

    def default_tile(self) -> int:
        return STUDENT_TILE  # a bounded context: exact at any tile, and less overlap at a larger one

    def min_size(self) -> int:
        return SCALE * self.unshuffle  # the reflect padding needs more pixels than it adds

    def alignment(self) -> int:
        return SCALE * self.unshuffle  # tiles share the whole image's unshuffle and pooling grids

    def floats_per_pixel(self) -> float:
        return FLOATS_PER_PIXEL_PER_CHANNEL * self.enc1.body[0].in_channels
