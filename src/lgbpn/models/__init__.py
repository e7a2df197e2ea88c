from .registry import ARCHITECTURES, build_model, register

__all__ = ["ARCHITECTURES", "build_model", "register"]
