"""The registry of architectures: name -> network class with default settings.

An architecture registers by decorating its class, once per name:

    @register("lgbpn-s", "LG-BPN slim ...", base_ch=32)
    @register("lgbpn", "LG-BPN, the paper's full network")
    class LGBPN(DenoisingNetwork): ...
"""

from dataclasses import dataclass, field
from typing import Callable

from ..errors import ConfigError, one_line
from .base import DenoisingNetwork


@dataclass(frozen=True)
class Architecture:
    name: str
    build: type[DenoisingNetwork]
    description: str
    defaults: dict = field(default_factory=dict)


ARCHITECTURES: dict[str, Architecture] = {}


def register(name: str, description: str, **defaults) -> Callable[[type], type]:
    """Class decorator: `build_model(name)` builds the class with `defaults`. A name is taken once."""

    def add(cls: type) -> type:
        if name in ARCHITECTURES:
            raise ValueError(f"architecture {name!r} is already registered ({ARCHITECTURES[name].build.__name__})")
        if not issubclass(cls, DenoisingNetwork):
            raise TypeError(f"{cls.__name__} must subclass DenoisingNetwork to be registered as {name!r}")
        ARCHITECTURES[name] = Architecture(name, cls, description, defaults)
        return cls

    return add


def build_model(name: str, **overrides) -> DenoisingNetwork:
    """Build architecture `name`; the effective settings are kept on the model for saving."""
    if name not in ARCHITECTURES:
        raise ConfigError(f"--arch: unknown architecture {name!r}; choose one of {sorted(ARCHITECTURES)}")
    arch = ARCHITECTURES[name]
    config = {**arch.defaults, **overrides}
    try:
        model = arch.build(**config)
    except (TypeError, ValueError, RuntimeError) as exc:  # unknown keyword, bad preset, negative channels
        raise ConfigError(f"--arch {name}: bad setting ({one_line(exc)})") from None
    model.arch_name = name
    model.arch_config = config
    return model
