"""What the page works on: the photos a user uploaded, their denoising jobs, and the one thread that runs them.

Everything lives in memory and in one private temporary folder, under random ids: the page can reach
nothing else. Jobs run one at a time (the CPU is the bottleneck), in the order they were asked for;
each photo keeps only its latest job. A job does what `lgbpn denoise` does to one file (read_image,
Denoiser.denoise_pixels, write_image), so its result equals the command's on the same file and settings.
"""

import io
import re
import secrets
import shutil
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from ..batch import output_suffix
from ..denoiser import DEFAULT_MODEL, Denoiser, pretrained_names
from ..errors import LgbpnError, WeightsError, one_line
from ..io import read_image, write_image
from ..layout import to_channels_first
from ..noise import measure_noise
from ..options import InferenceOptions
from ..scale import convert_depth, to_model_scale
from ..weights import load_model

WEIGHTS_SUFFIXES = (".safetensors", ".pth", ".pt")


def safe_name(name: str, default: str) -> str:
    """A client's file name reduced to a plain base name of letters, digits, '.', '-' and '_'."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name or "").name).strip("._")
    return base[:120] or default


def describe_depth(pixels: np.ndarray) -> str:
    return {np.dtype(np.uint8): "8-bit", np.dtype(np.uint16): "16-bit"}.get(pixels.dtype, "32-bit float")


def noise_sigma(pixels: np.ndarray) -> float | None:
    """The measured noise level on the 8-bit scale (lgbpn.noise), None for an image too small to measure."""
    profile = measure_noise(to_channels_first(to_model_scale(pixels)))
    return None if profile is None else round(profile.sigma, 2)


def view_png(pixels: np.ndarray) -> bytes:
    """The full-resolution 8-bit PNG a browser shows (the download keeps the real depth)."""
    arr = convert_depth(pixels, np.uint8)
    buffer = io.BytesIO()
    PILImage.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


@dataclass
class Photo:
    id: str
    name: str  # the user's file name, made safe
    path: Path
    width: int
    height: int
    format: str
    depth: str
    noise: float | None
    view: bytes = field(repr=False)


@dataclass
class Job:
    id: str
    photo: Photo
    model: str  # a shipped model's name, or "weights:<id>" of an uploaded file
    strength: float
    passes: int  # network runs the strength asks for (0, 1 or 2): the progress counts their tiles
    state: str = "queued"  # queued, running, done, failed
    progress: float = 0.0
    passes_done: int = 0
    message: str = ""
    noise: float | None = None
    result: Path | None = None
    view: bytes | None = field(default=None, repr=False)

    def public(self) -> dict:
        return {"id": self.id, "photo": self.photo.id, "model": self.model, "strength": self.strength, "state": self.state,
                "progress": round(self.progress, 3), "message": self.message, "noise": self.noise,
                "download": self.result.name if self.result else None}


class Session:
    """Photos, uploaded weights and jobs of one running page; `close` removes its folder."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="lgbpn-ui-"))
        self.photos: dict[str, Photo] = {}
        self.weights: dict[str, tuple[Path, str]] = {}  # id -> (file, label)
        self.jobs: dict[str, Job] = {}
        self._latest: dict[str, Job] = {}  # photo id -> its latest job
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lgbpn-ui")
        self._running: Job | None = None

    def close(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.folder, ignore_errors=True)

    def models(self) -> list[dict]:
        shipped = [{"id": name, "label": name + (" (default, fast)" if name == DEFAULT_MODEL else ""),
                    "default": name == DEFAULT_MODEL} for name in pretrained_names()]
        shipped.sort(key=lambda m: not m["default"])
        return shipped + [{"id": f"weights:{key}", "label": label, "default": False} for key, (_, label) in self.weights.items()]

    def _store(self, kind: str, name: str, data: bytes) -> Path:
        path = self.folder / kind / secrets.token_hex(8) / name
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        return path

    def add_photo(self, name: str, data: bytes) -> Photo:
        """Keep an uploaded photo; raises LgbpnError, naming the user's file, when it cannot be read."""
        name = safe_name(name, "photo")
        path = self._store("photos", name, data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. damaged EXIF: the result is still right
                image = read_image(path)
        except LgbpnError as exc:
            shutil.rmtree(path.parent, ignore_errors=True)
            raise type(exc)(str(exc).replace(str(path), name)) from None
        height, width = image.pixels.shape[:2]
        photo = Photo(path.parent.name, name, path, width, height, image.format, describe_depth(image.pixels),
                      noise_sigma(image.pixels), view_png(image.pixels))
        self.photos[photo.id] = photo
        return photo

    def add_weights(self, name: str, data: bytes) -> dict:
        """Keep an uploaded weights file once it loads; raises WeightsError naming the user's file."""
        name = safe_name(name, "weights.safetensors")
        if not name.lower().endswith(WEIGHTS_SUFFIXES):
            raise WeightsError(f"{name}: not a weights file (expected {', '.join(WEIGHTS_SUFFIXES)})")
        path = self._store("weights", name, data)
        try:
            model = load_model(path)
        except LgbpnError as exc:
            shutil.rmtree(path.parent, ignore_errors=True)
            raise WeightsError(str(exc).replace(str(path), name)) from None
        key = path.parent.name
        self.weights[key] = (path, f"{name} ({model.arch_name})")
        return {"id": f"weights:{key}", "label": self.weights[key][1]}

    def submit(self, photo_id: str, model: str, strength: float) -> Job:
        """Queue a job; raises KeyError for an unknown photo or model, OptionError for a bad strength."""
        photo = self.photos[photo_id]
        if model not in {m["id"] for m in self.models()}:
            raise KeyError(model)
        options = InferenceOptions(strength=strength)  # validates it
        passes = 2 if options.strength > 1 else int(options.strength > 0)
        job = Job(secrets.token_hex(8), photo, model, options.strength, passes)
        with self._lock:
            old = self._latest.get(photo_id)
            if old is not None:
                del self.jobs[old.id]
            self.jobs[job.id] = self._latest[photo_id] = job
        if old is not None and old.result is not None:
            shutil.rmtree(old.result.parent, ignore_errors=True)
        self._worker.submit(self._run, job)
        return job

    def _run(self, job: Job) -> None:
        if self.jobs.get(job.id) is not job:  # replaced while it waited
            return
        self._running, job.state = job, "running"
        try:
            image = read_image(job.photo.path)
            image.pixels = self._denoiser(job.model, job.strength).denoise_pixels(image.pixels)
            stem = Path(job.photo.name).stem
            result = self.folder / "results" / job.id / f"{stem}_denoised{output_suffix(job.photo.path)}"
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                write_image(result, image)
            job.message = "; ".join(str(w.message).replace(str(result), result.name) for w in caught)
            job.noise, job.view, job.result = noise_sigma(image.pixels), view_png(image.pixels), result
            job.progress, job.state = 1.0, "done"
        except LgbpnError as exc:
            job.message, job.state = str(exc).replace(str(job.photo.path), job.photo.name), "failed"
        except Exception as exc:  # a bug must not take the page down: report it, and the next job runs
            job.message = f"{job.photo.name}: unexpected {type(exc).__name__} ({one_line(exc)}); please report this"
            job.state = "failed"
        finally:
            self._running = None

    def _report(self, done: int, tiles: int) -> None:
        """Tile progress of the running job (every pass of the network, a teacher's too, reports here)."""
        job = self._running
        if job is None:
            return
        job.progress = min(1.0, (job.passes_done + done / tiles) / max(job.passes, 1))
        if done == tiles:
            job.passes_done += 1

    @lru_cache(maxsize=4)  # a few (model, strength) pairs: the session lives as long as the page
    def _denoiser(self, model: str, strength: float) -> Denoiser:
        options = InferenceOptions(strength=strength)  # `lgbpn denoise`'s defaults: its result equals the command's
        if model.startswith("weights:"):
            return Denoiser.from_weights(self.weights[model.removeprefix("weights:")][0], options=options,
                                         progress=self._report)
        return Denoiser.from_pretrained(model, options=options, progress=self._report)
