"""lgbpn: self-supervised real-world image denoising (LG-BPN, AP-BSN)."""

__version__ = "0.1.0"
