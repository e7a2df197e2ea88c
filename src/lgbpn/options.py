"""How a model is run at inference: one frozen, validated set of options.

`Denoiser`, `tiling.denoise_tiled`, the command line and benchmarks/quality.py all take an
`InferenceOptions`; a wrong value is refused when the options are made, naming the option.
Neither importing this module nor making options imports torch: the command line reads its defaults for --help,
and checks the options before the first photo's decode, which then overlaps torch's import.
"""

import dataclasses
import math
import re
from numbers import Integral, Real

from .errors import ConfigError

# A fixed tile (the blind-spot networks'), not one sized from a memory estimate: LG-BPN's channel attention pools over the
# whole tile, so its output depends on the tile, and a default that moved with the estimate (or
# with the model) would silently change results. 672 is a multiple of the tile alignments (12 for
# LG-BPN's SIDD preset, 4 for DND, 2 for AP-BSN) and covers the benchmarks' 256x256 blocks and
# 512x512 crops whole, as the reference code runs them. Peak memory for a 768x768 window (tile
# plus overlap on both sides): about 3 GB for lgbpn-s, 10 GB for the full LG-BPN.
DEFAULT_TILE = 672
# A distilled student has a bounded context, so its tiles are exact at any size: a larger tile wastes less on
# the overlap (a 12 MP photo: 1.24x its pixels through the network instead of 1.46x, 9% less network time
# for 150 MB more peak memory, 792 MB; 1344 saves 1% more for 70 MB more; benchmarks/tile_sizes.py).
STUDENT_TILE = 1008
DEFAULT_OVERLAP = 48
# Test-time settings of a network with presets (LG-BPN's PD factors and shrunk-grid ratios);
# "auto" picks one per image from its measured noise (see Denoiser).
PRESET_CHOICES = ("auto", "sidd", "dnd", "light")
# The strongest denoising asked for: 2 is a second pass over the first one's output (see strength.py).
MAX_STRENGTH = 2.0
# Side of the regions in which an adapted student and the one it came from are compared (selfscore.keep_base_mask), and
# by how much lower the adapted one's error must be there to replace the base's (0.5%: 0.02 dB). Measured on the
# leave-camera-out route (PolyU NikonD800 and Sony, 22 photos of 512x512, benchmarks/adapt_route.py --keep, the
# adapted student better than its start by PSNR on 14 of them, +0.13 dB on average): with the unscaled score the
# route's output stayed at the start's (38.34 dB) whatever the margin; scaled (selfscore.NOISE_SCALE), whole 512 px regions
# gave 38.42 with margins 0 to 0.5%, 38.39 at 1.2%, 38.36 at 2%, each below the start on 1 photo.
KEEP_BASE_REGION = 512
KEEP_BASE_MARGIN = 0.005
PRECISIONS = ("auto", "fp32", "bf16")  # precision.py
# The device types torch.device knows (torch 2.13; not the deprecated mkldnn), so that options are checked before
# torch is imported: the command line decodes its first photo while torch loads.
DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu", "hip", "meta", "ipu", "opengl", "opencl", "ideep", "ve", "fpga",
                "maia", "xla", "lazy", "vulkan", "hpu", "mtia", "privateuseone")
# R3 (nn/r3.py): refine passes, and the share of pixels each gives back to the noisy input (AP-BSN's values).
R3_PASSES = 8
R3_PROB = 0.16
# How `--adapt` adapts a distilled student (adapt.py): on the photos' own recorrupted pairs, or through its teacher.
ADAPT_ROUTES = ("self", "teacher")
# A student's self-ensemble (tiling.py): its output averaged over this many of the image's flips and rotations.
ENSEMBLE_SIZES = (1, 2, 4, 8)
# Sigma of the low-frequency correction's Gaussian (nn/lowpass.py).
DEFAULT_LOWPASS_SIGMA = 8.0


class OptionError(ConfigError):
    """An inference option with a wrong type or value; `option` is its field name."""

    def __init__(self, option: str, problem: str):
        super().__init__(f"{option}: {problem}")
        self.option, self.problem = option, problem


@dataclasses.dataclass(frozen=True)
class InferenceOptions:
    """Device, precision, preset, R3, tiles and output corrections of an inference run; change one with `replace`."""

    device: str = "cpu"  # cpu, cuda, cuda:N, or auto (cuda where available)
    precision: str = "auto"  # auto: bf16 where the device has native bf16 units, else fp32
    preset: str = "auto"  # PRESET_CHOICES; ignored by networks without presets
    r3: bool = True  # random-replacing refinement (AP-BSN's test-time ensemble)
    passes: int = R3_PASSES
    prob: float = R3_PROB  # share of pixels each R3 pass gives back to the noisy input
    seed: int = 0  # of the R3 replacement masks
    tile: int | None = None  # None: the network's own (DenoisingNetwork.default_tile); rounded down to its PD alignment
    overlap: int = DEFAULT_OVERLAP  # rounded up to the model's PD alignment
    # The two output corrections (ours); None and False give the paper's output.
    lowpass_sigma: float | None = DEFAULT_LOWPASS_SIGMA
    blend: bool | str = True  # True, False, or "auto": only where the measured noise is light (see corrections.py)
    # A distilled student hands an image noisier than its training range to its teacher (see Denoiser).
    teacher_fallback: bool = True
    # A student (its corrections learnt) gives the input back where it removed far more than noise (nn/wiener.py).
    guard: bool = True
    # A student fine-tuned from another (`--adapt`) keeps that one's output wherever it scores better (selfscore.py).
    keep_base: bool = True
    # 0: the input; 1: the output above; up to MAX_STRENGTH: stronger (strength.py defines it).
    strength: float = 1.0
    # An ordinary network (a student) also runs on the halved image against coarse colour noise (coarse.py):
    # True, False, or "auto": where the measured noise is heavy. Off by default: the shipped student has learnt what
    # it gave (docs/training.md, "The scene as the target").
    coarse: bool | str = False
    # An ordinary network's output averaged over 1, 2, 4 or 8 flips and rotations of the image (each undone): about
    # that many times the network's time, for a cleaner output. Blind-spot networks have R3 instead.
    ensemble: int = 1

    def __post_init__(self):
        for name in ("r3", "teacher_fallback", "guard", "keep_base"):
            _check(name, getattr(self, name), isinstance(getattr(self, name), bool), "must be True or False")
        for name, least in (("passes", 1), ("seed", 0), ("tile", 1), ("overlap", 0)):
            value = getattr(self, name)
            if value is None and name == "tile":  # the network's own
                continue
            _check(name, value, isinstance(value, Integral) and not isinstance(value, bool), "must be an integer")
            _check(name, value, value >= least, "must be positive" if least else "must be >= 0")
        _check("ensemble", self.ensemble, self.ensemble in ENSEMBLE_SIZES and not isinstance(self.ensemble, bool),
               f"must be one of {', '.join(map(str, ENSEMBLE_SIZES))}")
        _check("seed", self.seed, self.seed < 2**64, "must be below 2**64")  # R3 masks hash it as uint64
        _check("strength", self.strength, _real(self.strength) and 0 <= self.strength <= MAX_STRENGTH,
               f"must be from 0 (the input) to {MAX_STRENGTH:g}")
        _check("prob", self.prob, _real(self.prob) and 0 < self.prob <= 1, "must be in (0, 1]")
        if self.lowpass_sigma is not None:
            _check("lowpass_sigma", self.lowpass_sigma, _real(self.lowpass_sigma) and self.lowpass_sigma > 0,
                   "must be positive, or None for no low-frequency correction")
        for name in ("blend", "coarse"):
            value = getattr(self, name)
            _check(name, value, value is True or value is False or value == "auto", "must be True, False or 'auto'")
        _check("preset", self.preset, self.preset in PRESET_CHOICES, f"must be one of {', '.join(PRESET_CHOICES)}")
        _check("precision", self.precision, self.precision in PRECISIONS, f"must be one of {', '.join(PRECISIONS)}")
        _check("device", self.device, isinstance(self.device, str) and _device_name(self.device),
               "must be a torch device (cpu, cuda, cuda:N, ...) or auto")

    def replace(self, **changes) -> "InferenceOptions":
        """These options with some fields changed (validated again); an unknown name is an error."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise OptionError(unknown[0], f"no such inference option; known: {', '.join(f.name for f in dataclasses.fields(self))}")
        return dataclasses.replace(self, **changes)

    def describe(self, blind_spot: bool = True) -> str:
        """What these options add to the network's own output, in words (e.g. for a submission's label);
        R3 runs on a blind-spot network only, so for another it is not mentioned."""
        parts = [f"R3 ({self.passes} passes)" if self.r3 else "no R3"] if blind_spot else []
        if self.lowpass_sigma is not None:
            parts.append(f"low-frequency correction (sigma {self.lowpass_sigma:g})")
        if self.blend == "auto":
            parts.append("residual Wiener blend where the noise is light")
        elif self.blend:
            parts.append("residual Wiener blend")
        if self.lowpass_sigma is None and not self.blend:
            parts.append("no output corrections")
        if not blind_spot and self.coarse:
            parts.append(self.describe_coarse())
        return ", ".join(parts + self.describe_last(blind_spot))

    def describe_last(self, blind_spot: bool) -> list[str]:
        """The self-ensemble (an ordinary network's) and the strength, in words, as the descriptions end."""
        return ([f"self-ensemble of {self.ensemble}"] if not blind_spot and self.ensemble > 1 else []) + (
            [f"strength {self.strength:g}"] if self.strength != 1 else [])

    def describe_coarse(self) -> str:
        """The coarse pass (an ordinary network's), in words; empty when off."""
        return {True: "coarse pass", False: "", "auto": "coarse pass where the noise is heavy"}[self.coarse]

    @property
    def corrected(self) -> bool:
        return self.lowpass_sigma is not None or self.blend is not False


def _check(name: str, value, ok: bool, problem: str) -> None:
    if not ok:
        raise OptionError(name, f"{problem}, got {value!r}")


def _real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _device_name(name: str) -> bool:
    """What torch.device accepts (type, or type:index), and auto; checked without importing torch."""
    found = re.fullmatch(r"([a-z]+)(?::(?:0|[1-9][0-9]*))?", name)
    return name == "auto" or (found is not None and found[1] in DEVICE_TYPES)
