"""Denoising many files: output naming, never overwriting inputs, per-file errors, resumable runs.

A bad file is reported on one line, counted, and skipped; the others are still processed. Under
torchrun (WORLD_SIZE > 1) each rank denoises its own share of the files.
"""

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from .errors import ImageReadError, ImageWriteError, LgbpnError, one_line
from .io import RAW_SUFFIXES, SUPPORTED_SUFFIXES, WRITABLE_SUFFIXES, find_images, read_image, write_image


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


def _output_suffix(source: Path) -> str:
    """The input's own suffix where we write that format; .tif (16-bit) for a camera raw file; .png for BMP, WebP."""
    suffix = source.suffix.lower()
    if suffix in RAW_SUFFIXES:
        return ".tif"
    return source.suffix if suffix in WRITABLE_SUFFIXES else ".png"


def plan_outputs(inputs: list[Path], output: Path) -> list[Job]:
    """Map every input image to its output path (a file for one input file, else a folder tree)."""
    found = find_images(inputs)
    if not found:
        raise ImageReadError(f"{', '.join(map(str, inputs))}: no image files found "
                             f"(looked for {', '.join(sorted(SUPPORTED_SUFFIXES))})")
    single_file = len(inputs) == 1 and not inputs[0].is_dir()
    if single_file and output.suffix.lower() in SUPPORTED_SUFFIXES and not output.is_dir():
        jobs = [Job(found[0][0], output)]
    else:
        jobs = []
        for source, rel in found:
            base = next((p for p in inputs if p.is_dir() and source.is_relative_to(p)), None)
            # With several input folders, keep each one's name so equal relative names do not collide.
            prefix = Path(base.name) if base is not None and len(inputs) > 1 else Path()
            jobs.append(Job(source, output / prefix / rel.with_suffix(_output_suffix(source))))
    sources = {j.source.resolve() for j in jobs}
    seen: dict[Path, Path] = {}
    for job in jobs:
        target = job.target.resolve()
        if target in sources:
            raise ImageWriteError(f"{job.target}: output would overwrite an input; choose another -o")
        if target in seen:
            raise ImageWriteError(f"{job.target}: two inputs ({seen[target]}, {job.source}) map to this output")
        seen[target] = job.source
    return jobs


def _shard(jobs: list[Job]) -> list[Job]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return jobs[rank::world] if world > 1 else jobs


log = logging.getLogger(__name__)


def adapt_folder(jobs: list[Job]) -> Path:
    """Where `--adapt` saves what it adapted: beside the outputs (their common folder)."""
    return Path(os.path.commonpath([j.target.parent.resolve() for j in jobs]))


def denoise_files(denoiser, jobs: list[Job], skip_existing: bool = False, adapt_steps: int = 0,
                  source: str | None = None) -> int:
    """Denoise the jobs; returns the exit code (0 ok, 1 all/only file failed, 3 some failed).

    With `adapt_steps`, a blind-spot network first adapts to the inputs; a distilled student (`source`:
    its shipped name or weights file) takes the whole route of adapt.adapt_student, saved beside the outputs."""
    jobs = _shard(jobs)
    todo = [j for j in jobs if not (skip_existing and j.target.exists())]
    skipped = len(jobs) - len(todo)
    if adapt_steps and todo:
        from .adapt import adapt_student, adapt_to_images

        if denoiser.model.blind_spot:
            adapt_to_images(denoiser, [j.source for j in todo], adapt_steps)
        else:
            denoiser = adapt_student(denoiser, [j.source for j in todo], adapt_steps, adapt_folder(jobs), source)
    failed = 0
    # Lines printed while the progress bar is drawn must not get glued to it.
    with logging_redirect_tqdm(loggers=[logging.getLogger("lgbpn")]):
        for index, job in enumerate(tqdm(todo, desc="denoise", unit="file", disable=len(todo) < 2)):
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    image = read_image(job.source)
                    image.pixels = denoiser.denoise_pixels(image.pixels)
                    write_image(job.target, image)
                for w in caught:
                    log.warning("warning: %s: %s", job.source, w.message)
            except LgbpnError as exc:
                failed += 1
                message = str(exc)
                if str(job.source) not in message and str(job.target) not in message:
                    message = f"{job.source}: {message}"  # e.g. the network's channel count: name the file
                log.error("error: %s", message)
            except Exception as exc:  # a bug must not cost the rest of the batch: report it and go on
                failed += 1
                log.error("error: %s: unexpected %s (%s); please report this", job.source, type(exc).__name__, one_line(exc))
            except KeyboardInterrupt:
                log.error("interrupted: %d denoised, %d skipped, %d failed, %d not done; run again with --skip-existing "
                          "to resume", index - failed, skipped, failed, len(todo) - index)
                raise
    done = len(todo) - failed
    if len(jobs) > 1 or skipped:  # one file: its error line (or nothing) says it all
        log.info("%d denoised, %d skipped (output exists), %d failed", done, skipped, failed)
    if failed == 0:
        return 0
    return 1 if failed == len(todo) else 3
