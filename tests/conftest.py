import os
from pathlib import Path

import pytest
import torch

# Hermetic: a clean-photo corpus built on this machine (scripts/build_clean_corpus.py) must not change what
# a test's distillation draws; tests that want clean photos name them (--clean, clean_data).
os.environ["LGBPN_CLEAN_CORPUS"] = str(Path(__file__).resolve().parent / "no-clean-corpus")

torch.set_num_threads(2)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PARITY = SHARED / "parity"
DATA = SHARED / "data"


def load_parity(name: str) -> dict:
    path = PARITY / name
    if not path.exists():
        pytest.skip(f"reference parity vectors not found at {path} (../shared/parity is absent)")
    return torch.load(path)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not DATA.exists():
        pytest.skip(f"{DATA} is absent: tests on real camera noise need ../shared/data")
    return DATA


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread: on a busy 2-core machine two threads spin against each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def weights(tmp_path_factory) -> Path:
    """A tiny random LG-BPN-S weights file for the CLI tests."""
    # Imported here: a broken model import then fails only the tests that use it.
    from .helpers import tiny_weights

    return tiny_weights(tmp_path_factory.mktemp("weights") / "tiny.safetensors")


@pytest.fixture(scope="session")
def apbsn_weights(tmp_path_factory) -> Path:
    """Tiny AP-BSN weights: it needs only 3 pixels of context, cheap for very long images."""
    from .helpers import tiny_weights

    return tiny_weights(tmp_path_factory.mktemp("weights") / "apbsn.safetensors", "apbsn")
