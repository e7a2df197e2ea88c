"""Training settings: the reference recipe as defaults, overridable from a YAML/TOML file and flags."""

import dataclasses
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from ..errors import ConfigError
from ..io import atomic_write_bytes
from ..precision import PRECISIONS


@dataclass
class TrainConfig:
    # The reference recipe (LG-BPN / AP-BSN, SIDD): Adam 1e-4, batch 8 of 120x120 crops, flips and
    # rotations, 20 epochs of SIDD-Medium patches (~76.5k steps), lr x0.1 every 8 epochs (~30.6k steps).
    arch: str = "lgbpn"
    preset: str = "sidd"
    model: dict = field(default_factory=dict)  # architecture settings (e.g. base_ch) over its defaults
    steps: int = 76_500
    crop: int = 120
    batch: int = 8
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "step"  # "step" (reference) or "cosine"
    lr_step: int = 30_600
    lr_gamma: float = 0.1
    workers: int = 0
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 200
    val_every: int = 1000
    val_images: int = 8  # validation images (with clean references) scored each time
    val_crop: int = 256  # centre crop of each validation image; 0 = whole image
    val_r3: bool = False  # R3 in validation (8x the cost)
    grad_clip: float = 0.0  # 0 = off
    # Ours, off in the reference recipe: linear lr warm-up, an exponential moving average of the
    # weights (validated, and saved as the run's weights), and the arithmetic precision.
    warmup_steps: int = 0
    ema_decay: float = 0.0  # 0 = no EMA; e.g. 0.999
    precision: str = "auto"  # auto: bf16 where the device has native bf16 units, else fp32

    def __post_init__(self):
        for name in ("steps", "crop", "batch", "log_every", "checkpoint_every", "val_every", "lr_step"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"config: {name} must be a positive integer, got {value!r}")
        if not self.lr > 0:
            raise ConfigError(f"config: lr must be positive, got {self.lr!r}")
        if self.schedule not in ("step", "cosine"):
            raise ConfigError(f"config: schedule must be 'step' or 'cosine', got {self.schedule!r}")
        for name in ("workers", "val_images", "val_crop", "grad_clip", "warmup_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"config: {name} must be >= 0, got {getattr(self, name)!r}")
        if not self.lr_gamma > 0:
            raise ConfigError(f"config: lr_gamma must be positive, got {self.lr_gamma!r}")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"config: ema_decay must be in [0, 1), got {self.ema_decay!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"config: precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if not isinstance(self.model, dict):
            raise ConfigError(f"config: model must be a mapping of architecture settings, got {self.model!r}")
        if (not isinstance(self.betas, (list, tuple)) or len(self.betas) != 2
                or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in self.betas)):
            raise ConfigError(f"config: betas must be two numbers, e.g. [0.9, 0.999], got {self.betas!r}")
        self.betas = tuple(self.betas)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d


def _types() -> dict[str, type]:
    return {f.name: f.type for f in dataclasses.fields(TrainConfig)}


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


def read_config_file(path: str | Path) -> dict:
    path = resolve_config_path(path)
    try:
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (OSError, tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read config ({' '.join(str(exc).split())[:160]})") from None
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: config must be a mapping of settings")
    unknown = sorted(set(data) - set(_types()))
    if unknown:
        raise ConfigError(f"{path}: unknown config key(s) {', '.join(unknown)}; known: {', '.join(sorted(_types()))}")
    return data


def make_config(file: str | Path | None = None, **overrides) -> TrainConfig:
    """Defaults, then the file's values, then explicit overrides (None = not given).

    The file's values are checked even where an override replaces them, and errors name the file.
    """
    values = read_config_file(file) if file else {}
    source = str(file) if file else "config"
    _check_types(values, source)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    _check_types(overrides, "config")
    values.update(overrides)
    try:
        return TrainConfig(**values)
    except TypeError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _check_types(values: dict, source: str) -> None:
    for key, value in values.items():
        expected = TrainConfig.__dataclass_fields__[key].default
        if isinstance(expected, float) and isinstance(value, str):
            try:  # YAML 1.1 reads 1e-3 (no dot) as a string
                value = values[key] = float(value)
            except ValueError:
                pass
        if isinstance(expected, bool) and not isinstance(value, bool):
            raise ConfigError(f"{source}: {key} must be true or false, got {value!r}")
        if isinstance(expected, int) and not isinstance(expected, bool) and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"{source}: {key} must be an integer, got {value!r}")
        if isinstance(expected, float) and not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: {key} must be a number, got {value!r}")
        if isinstance(expected, str) and not isinstance(value, str):
            raise ConfigError(f"{source}: {key} must be a string, got {value!r}")


def save_config(config: TrainConfig, path: Path) -> None:
    atomic_write_bytes(path, yaml.safe_dump(config.to_dict(), sort_keys=False).encode())
