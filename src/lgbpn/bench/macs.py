"""Multiply-adds of the work a case times, counted by torch's FLOP counter on meta tensors."""

from contextlib import contextmanager
from unittest import mock

import torch
from torch.utils.flop_counter import FlopCounterMode

from .. import reference_path, tiling
from ..models import build_model
from ..tiling import plan_tiles
from ..train.trainer import self_supervised_loss
from .cases import Case, ours, reference_forward

_META_MODELS: dict[str, torch.nn.Module] = {}


def _meta_model(name: str) -> torch.nn.Module:
    """The model on the meta device: shapes without storage, for counting."""
    if name not in _META_MODELS:
        _META_MODELS[name] = build_model(name, preset="sidd").to("meta")
    return _META_MODELS[name]


def count_macs(case: Case, stage: str | None = None) -> int:
    """Multiply-adds of the work `case` times (or of one `stage` pass), counted on meta tensors."""
    model = _meta_model(case.model).train(case.kind == "train")
    x = torch.empty(case.batch, 3, case.height, case.width, device="meta")
    counter = FlopCounterMode(display=False)
    with counter, _shape_only_helpers():
        if stage is not None:
            with torch.no_grad():
                model(model.pad_for_inference(x), stage=stage)
        elif case.kind == "train":
            self_supervised_loss(model, x).backward()
        elif case.path == "reference":
            reference_forward(model, x)
        else:
            ours(model, x, r3=case.r3)
    return counter.get_total_flops() // 2


def _taps_shape(x: torch.Tensor, size: int, ratio: float) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.new_empty(b, c, h * size, w * size)


def _masks_shape(shape, passes, prob, seed, origin) -> torch.Tensor:
    return torch.empty(passes, *shape, dtype=torch.bool, device="meta")


@contextmanager
def _shape_only_helpers():
    """The reference's per-tap sampling and R3's mask drawing are elementwise work, which the FLOP
    counter does not count; shape-only stand-ins give the same count in milliseconds, not seconds."""
    with mock.patch.object(reference_path, "sample_taps", _taps_shape), \
            mock.patch.object(tiling, "r3_masks", _masks_shape):
        yield


def count_tiles(model_name: str, height: int, width: int) -> int:
    """How many tiles denoise_tiled cuts an image into (its tile is rounded to the PD alignment)."""
    rows, cols = plan_tiles(_meta_model(model_name), height, width)
    return len(rows) * len(cols)
