"""Saving and loading weights: our safetensors files and the reference implementations' checkpoints.

Our files are safetensors (no code can run on load) with the architecture and its settings in the
metadata. Reference `.pth` checkpoints are pickles: they are only ever opened with
`torch.load(weights_only=True)`, which refuses anything but tensors and plain containers.
"""

import json
import pickle
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from .errors import ConfigError, WeightsError
from .errors import one_line as _one_line
from .io import atomic_write_bytes
from .models.base import DenoisingNetwork
from .models.registry import build_model


def save_weights(model: DenoisingNetwork, path: str | Path, **info) -> None:
    """Write `model`'s weights with its architecture, settings and any `info` as metadata."""
    meta = {"arch": model.arch_name, "config": json.dumps(model.arch_config), **{k: str(v) for k, v in info.items()}}
    if model.corrections_learnt:
        meta["corrections_learnt"] = "true"
    if model.teacher is not None:
        meta.update(teacher=model.teacher, noise_sigma_max=f"{model.noise_sigma_max:.3f}")
    if model.base is not None:
        meta["base"] = model.base
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write_bytes(Path(path), save(tensors, metadata=meta))


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file or a (reference) pickle checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    if path.suffix == ".safetensors":
        try:
            with open(path, "rb") as fh:
                header_len = int.from_bytes(fh.read(8), "little")
                header = json.loads(fh.read(header_len)) if 0 < header_len < 1 << 26 else {}
            return load_file(path), header.get("__metadata__", {}) or {}
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(f"{path}: not a valid safetensors file ({_one_line(exc)})") from None
    if path.stat().st_size == 0:
        raise WeightsError(f"{path}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols it is about to refuse
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(f"{path}: refused, the pickle holds more than tensors and could run code "
                           f"({_refusal_reason(exc)}); only safetensors files and plain tensor checkpoints "
                           "are loaded") from None
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise WeightsError(f"{path}: cannot read checkpoint ({_one_line(exc) or type(exc).__name__})") from None
    return _unwrap_checkpoint(obj, path), {}


def _refusal_reason(exc: Exception) -> str:
    """What the weights-only unpickler objected to, without torch's advice to turn the check off."""
    paragraphs = [" ".join(p.split()) for p in str(exc).split("\n\n")]
    useful = [p for p in paragraphs if p and not p.startswith(("Weights only load failed", "Check the documentation"))]
    return (useful[0] if useful else "not a plain tensor checkpoint")[:200]


def _unwrap_checkpoint(obj, path: Path) -> dict[str, torch.Tensor]:
    # Reference trainers save {'epoch': ..., 'model_weight': {'denoiser': state_dict}}.
    if isinstance(obj, dict) and "model_weight" in obj:
        obj = obj["model_weight"]
        obj = obj.get("denoiser", obj)
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: no state_dict of tensors found in the checkpoint")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _reference_arch(state: dict[str, torch.Tensor]) -> tuple[str, dict]:
    """Architecture and settings of a reference state_dict, read off its tensor shapes."""
    if "bsn.branch1.Maskconv.weight" in state:
        blocks = {k.split(".")[3] for k in state if k.startswith("bsn.branch1.body.") and ".body." in k[17:]}
        dtb = {k.split(".")[4] for k in state if k.startswith("bsn.branch2.body.encoder_level1.")}
        w = state["bsn.branch1.Maskconv.weight"]
        return "lgbpn", dict(in_ch=state["bsn.head.0.weight"].shape[1], base_ch=w.shape[0], head_ch=w.shape[1],
                             local_blocks=len(blocks), global_blocks=len(dtb))
    if "bsn.branch1.body.0.weight" in state:
        blocks = {k.split(".")[3] for k in state if k.startswith("bsn.branch1.body.") and ".body." in k[17:]}
        return "apbsn", dict(in_ch=state["bsn.head.0.weight"].shape[1], base_ch=state["bsn.head.0.weight"].shape[0],
                             blocks=len(blocks))
    raise WeightsError("unknown checkpoint layout")


def load_model(path: str | Path, arch: str | None = None, **overrides) -> DenoisingNetwork:
    """Build the right architecture for a weights file and load it (strictly).

    `arch`, when given, must be the file's architecture: a reference checkpoint is the full
    network (`lgbpn` or `apbsn`), never a slim variant.
    """
    state, meta = read_weights(path)
    if "arch" in meta:
        try:
            file_arch, config = meta["arch"], json.loads(meta.get("config", "{}"))
        except json.JSONDecodeError as exc:
            raise WeightsError(f"{path}: damaged metadata (config is not JSON: {exc})") from None
        if not isinstance(config, dict):
            raise WeightsError(f"{path}: damaged metadata (config is not a mapping)")
        reference = False
    else:
        try:
            file_arch, config = _reference_arch(state)
        except WeightsError:
            raise WeightsError(f"{path}: unrecognised weights (neither lgbpn's nor a reference checkpoint)") from None
        reference = True
    if arch is not None and arch != file_arch:
        detail = " (a reference checkpoint is the full network)" if reference else ""
        raise WeightsError(f"{path}: weights are for --arch {file_arch}, not {arch}{detail}")
    try:
        model = build_model(file_arch, **{**config, **overrides})
    except ConfigError as exc:
        raise WeightsError(f"{path}: {exc}") from None
    if reference:
        state = model.convert_reference_state_dict(state)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    missing, unexpected = set(model.state_dict()) - set(state), set(state) - set(model.state_dict())
    if missing or unexpected:
        detail = f"missing {sorted(missing)[:3]}" if missing else f"unexpected {sorted(unexpected)[:3]}"
        raise WeightsError(f"{path}: weights do not fit {model.arch_name} ({detail})")
    mismatched = [k for k, v in model.state_dict().items() if v.shape != state[k].shape]
    if mismatched:
        k = mismatched[0]
        raise WeightsError(
            f"{path}: weights do not fit {model.arch_name}: {k} has shape {tuple(state[k].shape)}, "
            f"expected {tuple(model.state_dict()[k].shape)}"
        )
    model.load_state_dict(state)
    model.corrections_learnt = meta.get("corrections_learnt") == "true"
    if "teacher" in meta:
        try:
            model.teacher, model.noise_sigma_max = meta["teacher"], float(meta["noise_sigma_max"])
        except (KeyError, ValueError):
            raise WeightsError(f"{path}: damaged metadata (a teacher without a valid noise_sigma_max)") from None
    model.base = meta.get("base")
    return model
