from . import apbsn, lgbpn, student  # noqa: F401  (importing them registers the architectures)
from .base import DenoisingNetwork
from .registry import ARCHITECTURES, build_model, register

__all__ = ["ARCHITECTURES", "DenoisingNetwork", "build_model", "register"]
