"""A small registry of architectures: name -> constructor with default settings."""

from dataclasses import dataclass, field
from typing import Callable

import torch.nn as nn

from ..errors import ConfigError
from .apbsn import APBSN
from .lgbpn import LGBPN


@dataclass(frozen=True)
class Architecture:
    name: str
    build: Callable[..., nn.Module]
    description: str
    defaults: dict = field(default_factory=dict)


ARCHITECTURES: dict[str, Architecture] = {}


def register(name: str, build: Callable[..., nn.Module], description: str, **defaults) -> None:
    ARCHITECTURES[name] = Architecture(name, build, description, defaults)


def build_model(name: str, **overrides) -> nn.Module:
    """Build architecture `name`; the effective settings are kept on the model for saving."""
    if name not in ARCHITECTURES:
        raise ConfigError(f"--arch: unknown architecture {name!r}; choose one of {sorted(ARCHITECTURES)}")
    arch = ARCHITECTURES[name]
    config = {**arch.defaults, **overrides}
    try:
        model = arch.build(**config)
    except (TypeError, ValueError, RuntimeError) as exc:  # unknown keyword, bad preset, negative channels
        raise ConfigError(f"--arch {name}: bad setting ({' '.join(str(exc).split())[:200]})") from None
    model.arch_name = name
    model.arch_config = config
    return model


register("lgbpn", LGBPN, "LG-BPN, the paper's full network (128 channels, 9 local blocks, 6 DTB)")
register(
    "lgbpn-s",
    LGBPN,
    "LG-BPN slim: same blind patches, PD and ratios; fewer channels and blocks for CPU training",
    base_ch=32,
    head_ch=16,
    local_blocks=4,
    global_blocks=2,
    normalize=True,
)
register("apbsn", APBSN, "AP-BSN (DBSNl, 128 channels, 9 blocks per branch), the baseline")
register("apbsn-s", APBSN, "AP-BSN slim, the baseline at lgbpn-s's budget", base_ch=32, blocks=4, normalize=True)
