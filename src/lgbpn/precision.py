"""Numeric precision: bfloat16 autocast where the hardware has native bf16 units, float32 otherwise.

On a CPU without AMX or AVX512-BF16, oneDNN emulates bf16 and is slower than float32 (measured on an
AVX512 Xeon without them: bf16 matmul at 0.25x the float32 rate), so `auto` picks bf16 only where
the units exist. Weights stay float32 (master weights); autocast runs the convolutions and matmuls in
bf16 and keeps reductions such as the loss in float32.
"""

import contextlib
from pathlib import Path

import torch

from .errors import ConfigError
from .options import PRECISIONS


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether `device` computes bf16 in hardware (AMX / AVX512-BF16 on CPU; Ampere or newer on CUDA)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    cpu = getattr(torch, "cpu", None)
    probes = [getattr(cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    if all(callable(p) for p in probes):
        return any(p() for p in probes)
    return bool(_cpu_flags() & {"amx_bf16", "avx512_bf16"})


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """'auto' -> 'bf16' on native bf16 hardware, else 'fp32'; 'fp32'/'bf16' as given."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def autocast(precision: str, device: torch.device | str = "cpu"):
    """A context that runs eligible ops in bf16 for 'bf16', and does nothing for 'fp32'."""
    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
