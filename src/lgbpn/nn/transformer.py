"""LG-BPN's dilated transformer block (DTB), a Restormer block with dilated depthwise convs.

Attention is channel-wise ("transposed"): the attention map is channels x channels per head, so
its cost is linear in the number of pixels, and its context is the whole (sub-)image.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class BiasFreeLayerNorm(nn.Module):
    """LayerNorm over channels without mean subtraction or bias (Restormer's 'BiasFree')."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = x.var(dim=1, keepdim=True, unbiased=False)
        return x * torch.rsqrt(var + self.eps) * self.weight[:, None, None]


class DilatedChannelAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dilation: int):
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=False)
        self.qkv_dwconv = nn.Conv2d(
            dim * 3, dim * 3, 3, padding=dilation, dilation=dilation, groups=dim * 3, bias=False
        )
        self.project_out = nn.Conv2d(dim, dim, 1, bias=False)

    def attention(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """(B, heads, C/heads, C/heads) maps pooled over every position of the (sub-)image: away
        from the borders, the one path from a pixel to its own output in LG-BPN (models/lgbpn.py)."""
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        return (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        return self.project_out((self.attention(q, k) @ v).reshape(b, c, h, w))


class GatedDilatedFeedForward(nn.Module):
    def __init__(self, dim: int, expansion: float, dilation: int):
        super().__init__()
        hidden = int(dim * expansion)
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=False)
        self.dwconv = nn.Conv2d(
            hidden * 2, hidden * 2, 3, padding=dilation, dilation=dilation, groups=hidden * 2, bias=False
        )
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(gate) * value)


class DilatedTransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int = 2, expansion: float = 2.66, dilation: int = 3):
        super().__init__()
        self.norm1 = BiasFreeLayerNorm(dim)
        self.attn = DilatedChannelAttention(dim, heads, dilation)
        self.norm2 = BiasFreeLayerNorm(dim)
        self.ffn = GatedDilatedFeedForward(dim, expansion, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))
