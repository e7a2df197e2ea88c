"""lgbpn: self-supervised real-world image denoising (LG-BPN, AP-BSN).

    from lgbpn import Denoiser
    clean = Denoiser.from_pretrained()(noisy)
"""

from importlib import import_module
from importlib.metadata import version
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .denoiser import Denoiser
    from .models import build_model
    from .options import InferenceOptions

__version__ = version("lgbpn")  # one source of truth: pyproject.toml, as installed
__all__ = ["Denoiser", "InferenceOptions", "__version__", "build_model"]
# Loaded on first use: `import lgbpn.cli` (every command, and --help) must not wait for torch.
_EXPORTS = {"Denoiser": ".denoiser", "InferenceOptions": ".options", "build_model": ".models"}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
