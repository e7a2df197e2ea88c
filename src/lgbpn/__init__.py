"""lgbpn: self-supervised real-world image denoising (LG-BPN, AP-BSN).

    from lgbpn import Denoiser
    clean = Denoiser.from_pretrained()(noisy)
"""

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .denoiser import Denoiser
    from .models import build_model
    from .options import InferenceOptions

__all__ = ["Denoiser", "InferenceOptions", "__version__", "build_model"]
# Loaded on first use: `import lgbpn.cli` (every command, and --help) must not wait for torch, nor for
# importlib.metadata (0.1 s of every command's start-up) to read the version.
_EXPORTS = {"Denoiser": ".denoiser", "InferenceOptions": ".options", "build_model": ".models"}


def __getattr__(name: str):
    if name == "__version__":  # one source of truth: pyproject.toml, as installed
        from importlib.metadata import version

        return version("lgbpn")
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
