"""Training settings: the reference recipe as defaults, overridable from a YAML/TOML file and flags."""

import dataclasses
import os
import tomllib
from dataclasses import field
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import pydantic
import yaml
from pydantic import Field

from ..errors import ConfigError, one_line
from ..io import atomic_write_bytes

# Where scripts/build_clean_corpus.py puts the freely licensed clean photos that simulated pairs come
# from when `clean_data` names no folder (LGBPN_CLEAN_CORPUS moves it).
CLEAN_CORPUS = Path(os.environ.get("LGBPN_CLEAN_CORPUS", "~/.cache/lgbpn/clean-corpus")).expanduser()

Positive = Annotated[int, Field(gt=0)]
NonNegative = Annotated[int, Field(ge=0)]


# Validated from the field types: an unknown key, a wrong type or an out-of-range value is refused
# with the key named. Strict types, so that `steps: true` or `val_r3: 1` are errors, not guesses.
@pydantic.dataclasses.dataclass(config=pydantic.ConfigDict(extra="forbid", strict=True))
class TrainConfig:
    # The reference recipe (LG-BPN / AP-BSN, SIDD): Adam 1e-4, batch 8 of 120x120 crops, flips and
    # rotations, 20 epochs of SIDD-Medium patches (~76.5k steps), lr x0.1 every 8 epochs (~30.6k steps).
    arch: str = "lgbpn"
    preset: str = "sidd"
    model: dict = field(default_factory=dict)  # architecture settings (e.g. base_ch) over its defaults
    # Glob patterns of sample names (paths relative to --data) left out of training and of the
    # default validation, e.g. ["*NikonD800*"]: a camera the model never sees.
    exclude: list[str] = field(default_factory=list)
    # Each training image cut to its central window of this side (0: whole): a short run on large photos (the
    # `--adapt` route) then computes its targets on a bounded number of pixels per photo.
    window: NonNegative = 0
    steps: Positive = 76_500
    crop: Positive = 120
    batch: Positive = 8
    lr: Annotated[float, Field(gt=0)] = 1e-4
    betas: Annotated[tuple[float, float], Field(strict=False)] = (0.9, 0.999)  # YAML gives a list
    schedule: Literal["step", "cosine"] = "step"  # "step" (reference) or "cosine"
    lr_step: Positive = 30_600
    lr_gamma: Annotated[float, Field(gt=0)] = 0.1
    workers: NonNegative = 0
    seed: int = 0
    log_every: Positive = 10
    checkpoint_every: Positive = 200
    val_every: Positive = 1000
    val_images: NonNegative = 8  # validation images (with clean references) scored each time
    val_crop: NonNegative = 256  # centre crop of each validation image; 0 = whole image
    val_r3: bool = False  # R3 in validation (8x the cost)
    grad_clip: Annotated[float, Field(ge=0)] = 0.0  # 0 = off
    # Ours, off in the reference recipe: linear lr warm-up, an exponential moving average of the
    # weights (validated, and saved as the run's weights), and the arithmetic precision.
    warmup_steps: NonNegative = 0
    ema_decay: Annotated[float, Field(ge=0, lt=1)] = 0.0  # 0 = no EMA; e.g. 0.999
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 on native bf16 units, else fp32
    # Stop early, converged, once the network-alone validation PSNR has gained less than
    # `converged_gain` dB over the last `converged_window` share of the steps run (0 = never).
    converged_gain: Annotated[float, Field(ge=0)] = 0.0
    converged_window: Annotated[float, Field(gt=0, lt=1)] = 0.2
    # Distillation (`lgbpn distill`): the teacher (a shipped model's name or a weights file) and the
    # test settings whose outputs are the targets (see train/distill.py: "sidd", "dnd:r3", "sidd:raw").
    teacher: str = ""
    teacher_settings: list[str] = field(default_factory=list)
    # Share of the student's crops given extra camera noise, targets unchanged (data/crops.py).
    extra_noise: Annotated[float, Field(ge=0, le=1)] = 0.0
    # Share of the student's crops given a fine periodic pattern, on the input and targets alike (data/crops.py).
    extra_pattern: Annotated[float, Field(ge=0, le=1)] = 0.0
    # Share of the student's crops that are clean photos (from the `clean_data` folders, else CLEAN_CORPUS;
    # `exclude` applies) given a simulated camera's noise, their target the noiseless capture (data/camera.py).
    simulated: Annotated[float, Field(ge=0, le=1)] = 0.0
    clean_data: list[str] = field(default_factory=list)
    # Share of those pairs whose target is the scene before the sensor's mosaic (every colour at every pixel)
    # rather than the capture demosaicked as real references are: the detail the mosaic loses is given back too.
    scene_targets: Annotated[float, Field(ge=0, le=1)] = 0.0
    # Each teacher target T becomes T + sharpen (student(T) - T), the --init student's own second pass
    # (train/distill.py): a fine-tune that learns in one pass what two give (0 = the teacher's targets).
    sharpen: Annotated[float, Field(ge=0, le=1)] = 0.0
    # That second pass as the student's self-ensemble of this many flips and rotations (InferenceOptions.ensemble).
    sharpen_ensemble: Literal[1, 2, 4, 8] = 1
    # Self-distillation: the targets are the --init student's self-ensemble of this many flips and rotations on the
    # noisy image itself, instead of the teacher's (train/distill.py; 0: the teacher's).
    ensemble_targets: Literal[0, 2, 4, 8] = 0

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


def recipes_dir() -> Path:
    return Path(str(resources.files("lgbpn") / "recipes"))


def recipe_names() -> list[str]:
    return sorted(p.stem for p in recipes_dir().glob("*.yaml"))


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A config file's path, or the shipped recipe of that name (e.g. 'lgbpn-s')."""
    path = Path(name_or_path)
    if path.exists() or path.suffix:
        return path
    shipped = recipes_dir() / f"{name_or_path}.yaml"
    if shipped.exists():
        return shipped
    raise ConfigError(f"--config {name_or_path}: neither a file nor a shipped recipe ({', '.join(recipe_names())})")


def default_recipe(device_type: str) -> tuple[Path | None, str]:
    """The recipe `lgbpn train` uses without --config or --arch, and why."""
    if device_type == "cuda":
        return None, "a GPU is available: the paper's recipe (full LG-BPN, 76,500 steps)"
    return (recipes_dir() / "lgbpn-s.yaml",
            "no GPU: the paper's full LG-BPN would take weeks on a CPU, so the slim lgbpn-s recipe "
            "(the shipped default model's)")


# The recipe of `--adapt`: a short fine-tuning of the shipped student on the photos of one camera.
ADAPT_RECIPE = "lgbpn-fast-adapt"
ADAPT_STUDENT_STEPS = 2  # `--adapt N`: N steps of the teacher, then this many times N of the student


def distill_recipe(device_type: str) -> tuple[Path, str]:
    """The recipe `lgbpn distill` uses without --config or --arch, and why."""
    return recipes_dir() / "lgbpn-fast.yaml", "the shipped student's: a small U-Net from lgbpn-s"


def read_config_file(path: str | Path) -> dict:
    path = resolve_config_path(path)
    try:
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (OSError, tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read config ({one_line(exc, 160)})") from None
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: config must be a mapping of settings")
    unknown = sorted(set(data) - set(field_names()))
    if unknown:
        raise ConfigError(f"{path}: unknown config key(s) {', '.join(unknown)}; known: {', '.join(sorted(field_names()))}")
    return data


def make_config(file: str | Path | None = None, **overrides) -> TrainConfig:
    """Defaults, then the file's values, then explicit overrides (None = not given).

    The file's values are checked even where an override replaces them, and errors name the file.
    """
    values = read_config_file(file) if file else {}
    source = str(resolve_config_path(file)) if file else "config"
    _validate(values, source)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    _validate(overrides, "config")
    return _validate({**values, **overrides}, source)


def _validate(values: dict, source: str) -> TrainConfig:
    if isinstance(values.get("lr"), str):  # YAML 1.1 reads 1e-3 (no dot) as a string
        try:
            values["lr"] = float(values["lr"])
        except ValueError:
            pass
    try:
        return TrainConfig(**values)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"]) or "config"
        value = values.get(error["loc"][0], error.get("input")) if error["loc"] else error.get("input")
        raise ConfigError(f"{source}: {key}: {error['msg'].lower()}, got {value!r}") from None
    except TypeError as exc:  # an unknown keyword given in Python
        raise ConfigError(f"{source}: {one_line(exc)}") from None


def save_config(config: TrainConfig, path: Path) -> None:
    atomic_write_bytes(path, yaml.safe_dump(config.to_dict(), sort_keys=False).encode())
