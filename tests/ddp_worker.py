"""Run under torchrun by test_train.py: train a tiny model in the given precision, then each rank saves its weights."""

import os
import sys
from pathlib import Path

import torch

from lgbpn.train.config import make_config
from lgbpn.train.trainer import train

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers import TINY  # noqa: E402

torch.set_num_threads(1)
data, out, precision = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
config = make_config(arch="lgbpn-s", model=TINY["lgbpn-s"], steps=3, crop=40, batch=4, lr=1e-3, val_every=1000,
                     checkpoint_every=1000, log_every=1, precision=precision)
summary = train([data], out, config, progress=False)
torch.save(summary["model"].state_dict(), out / f"rank{os.environ['RANK']}.pt")
