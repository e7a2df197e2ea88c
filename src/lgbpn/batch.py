"""Denoising many files: output naming, never overwriting inputs, per-file errors, resumable runs.

A bad file is reported on one line, counted, and skipped; the others are still processed. Under
torchrun (WORLD_SIZE > 1) each rank denoises its own share of the files.
"""

import logging
import os
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from .errors import ImageReadError, ImageWriteError, LgbpnError, one_line
from .io import RAW_SUFFIXES, SUPPORTED_SUFFIXES, WRITABLE_SUFFIXES, find_images, read_image, write_image
from .io.write import DEFAULT_PNG_COMPRESSION


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


def output_suffix(source: Path) -> str:
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
            jobs.append(Job(source, output / prefix / rel.with_suffix(output_suffix(source))))
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
_working_on = threading.local()  # the file each thread (reader, denoiser, writer) works on, named in its warnings


def adapt_folder(jobs: list[Job]) -> Path:
    """Where `--adapt` saves what it adapted: beside the outputs (their common folder)."""
    return Path(os.path.commonpath([j.target.parent.resolve() for j in jobs]))


def _warn_naming_the_file(message, category, filename, lineno, file=None, line=None):
    source = getattr(_working_on, "source", None)
    if source is None:
        log.warning("warning: %s", message)
    else:
        log.warning("warning: %s: %s", source, message)


def _read(job: Job):
    _working_on.source = job.source
    return read_image(job.source)


def _write(job: Job, image, png_compression: int) -> None:
    _working_on.source = job.source
    write_image(job.target, image, png_compression)


class _Tally:
    """Per-file outcomes: a failure is reported on one line naming the file, and counted."""

    def __init__(self):
        self.done = self.failed = 0

    def outcome(self, job: Job, work) -> None:
        """Wait for `work` (a future, or None when the file already failed) and count how it went."""
        if work is None:
            return
        try:
            work.result()
        except Exception as exc:  # ours, or a bug: either way reported, and the rest of the batch goes on
            self.error(job, exc)
        else:
            self.done += 1

    def error(self, job: Job, exc: Exception) -> None:
        self.failed += 1
        if isinstance(exc, LgbpnError):
            message = str(exc)
            if str(job.source) not in message and str(job.target) not in message:
                message = f"{job.source}: {message}"  # e.g. the network's channel count: name the file
            log.error("error: %s", message)
        else:
            log.error("error: %s: unexpected %s (%s); please report this", job.source, type(exc).__name__, one_line(exc))


def denoise_files(load_denoiser: Callable, jobs: list[Job], skip_existing: bool = False, adapt_steps: int = 0,
                  png_compression: int = DEFAULT_PNG_COMPRESSION, source: str | None = None, adapt_route: str = "self") -> int:
    """Denoise the jobs with the Denoiser that `load_denoiser()` returns; returns the exit code (0 ok, 1
    all/only file failed, 3 some failed).

    With `adapt_steps`, a blind-spot network first adapts to the inputs; a distilled student (`source`:
    its shipped name or weights file) adapts by `adapt_route` (adapt.adapt_student), saved beside the outputs.

    A pipeline: while the network denoises one file, a thread decodes the next and another encodes the
    previous (the codecs release the GIL), so a folder runs at the network's pace; the first file decodes
    while torch and the model load. The network still sees the files one by one in order, so the
    outputs are those of a plain loop.
    """
    jobs = _shard(jobs)
    todo = [j for j in jobs if not (skip_existing and j.target.exists())]
    skipped = len(jobs) - len(todo)
    tally = _Tally()
    # Lines printed while the progress bar is drawn must not get glued to it.
    with (logging_redirect_tqdm(loggers=[logging.getLogger("lgbpn")]), warnings.catch_warnings(),
          ThreadPoolExecutor(1, "lgbpn-read") as reader, ThreadPoolExecutor(1, "lgbpn-write") as writer):
        warnings.simplefilter("always")
        warnings.showwarning = _warn_naming_the_file
        reads = [reader.submit(_read, todo[0])] if todo else []
        denoiser = load_denoiser()
        if adapt_steps and todo:
            from .adapt import adapt_student, adapt_to_images

            if denoiser.model.blind_spot:
                adapt_to_images(denoiser, [j.source for j in todo], adapt_steps)
            else:
                denoiser = adapt_student(denoiser, [j.source for j in todo], adapt_steps, adapt_folder(jobs), source,
                                         adapt_route)
        writes = []  # (job, future or None) whose outcome is not counted yet
        try:
            for index, job in enumerate(tqdm(todo, desc="denoise", unit="file", disable=len(todo) < 2)):
                if index + 1 < len(todo):
                    reads.append(reader.submit(_read, todo[index + 1]))
                work = None
                try:
                    image = reads[index].result()
                    reads[index] = None  # the decoded image is not kept beyond its turn
                    _working_on.source = job.source
                    image.pixels = denoiser.denoise_pixels(image.pixels)
                    work = writer.submit(_write, job, image, png_compression)
                except Exception as exc:  # ours, or a bug: either way reported, and the rest of the batch goes on
                    tally.error(job, exc)
                writes.append((job, work))
                while len(writes) > 1:  # at most one encode in flight: memory stays at about three images
                    tally.outcome(*writes[0])
                    writes.pop(0)
            for pending in writes:
                tally.outcome(*pending)
        except KeyboardInterrupt:
            for read in reads:
                if read is not None:
                    read.cancel()
            for pending in writes:  # an encode already under way completes (atomically) and counts
                tally.outcome(*pending)
            log.error("interrupted: %d denoised, %d skipped, %d failed, %d not done; run again with --skip-existing "
                      "to resume", tally.done, skipped, tally.failed, len(todo) - tally.done - tally.failed)
            raise
    if len(jobs) > 1 or skipped:  # one file: its error line (or nothing) says it all
        log.info("%d denoised, %d skipped (output exists), %d failed", tally.done, skipped, tally.failed)
    if tally.failed == 0:
        return 0
    return 1 if tally.failed == len(todo) else 3
