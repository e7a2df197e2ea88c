"""`lgbpn` command line: denoise, train, eval, plot, demo, models, bench, submit, ui."""

import dataclasses
import functools
import logging
import os
import sys
from pathlib import Path

import click

from .bench.command import bench_command  # cheap: the harness loads when `bench` runs
from .errors import LgbpnError
from .options import (
    ADAPT_ROUTES,
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    ENSEMBLE_SIZES,
    KEEP_BASE_MARGIN,
    KEEP_BASE_REGION,
    MAX_STRENGTH,
    PRESET_CHOICES,
    STUDENT_TILE,
    InferenceOptions,
    OptionError,
)


class _Main(click.Group):
    """Our own errors become one line on stderr and exit code 1, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except LgbpnError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


# Set by `run` (the console script and `python -m lgbpn`), not by library callers of `main` such as CliRunner.
_EXIT_WITHOUT_TEARDOWN = False


def run() -> None:
    """The console script and `python -m lgbpn`."""
    global _EXIT_WITHOUT_TEARDOWN
    _EXIT_WITHOUT_TEARDOWN = True
    main()


def _leave(code: int) -> None:
    """Exit with `code` once every output is written and closed. From the console script without the
    interpreter's teardown (streams and logs flushed first): torch's alone costs about 0.6 s a process
    (measured on a 12 MP photo, 8.8 -> 8.2 s), a tenth of a photo's time. Elsewhere an ordinary SystemExit."""
    if not _EXIT_WITHOUT_TEARDOWN:
        sys.exit(code)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _keep_freed_memory() -> None:
    """In a `lgbpn denoise` process of its own, glibc's malloc keeps the memory that a photo's tiles free for the
    next ones: by default it hands every block over 32 MB back to the kernel, which then faults its pages in again.
    One arena for all threads (the decoding, encoding and compute threads): each would keep its own. Measured on a
    12 MP photo (2 threads, whole processes, against glibc's defaults): bf16 4.8 -> 4.3-4.4 s, PNG peak 690 -> 720-770
    MB; fp32 8.0-8.5 -> 6.8-7.0 s (kernel time 2.3-2.9 -> 0.5-0.6 s), peak 800-820 -> 880-950 MB (without the one
    arena: up to 1030 MB for a JPEG). Elsewhere (another allocator, a library caller) nothing changes."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):  # not glibc
        return
    m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8  # glibc's malloc.h
    mallopt(m_arena_max, 1)
    mallopt(m_mmap_max, 0)  # large blocks from the heap, not from mmap (which returns them on free)
    mallopt(m_trim_threshold, 2**31 - 1)  # and the heap's top not trimmed back


@click.group(cls=_Main)
@click.version_option(package_name="lgbpn")
def main():
    """Self-supervised real-world image denoising (LG-BPN, AP-BSN)."""
    _show_library_messages()


def _show_library_messages() -> None:
    """Library modules report through logging (the `lgbpn` loggers); the command line shows their
    messages as plain lines on the current stderr (a new handler per run: tests swap stderr)."""
    logger = logging.getLogger("lgbpn")
    for old in [h for h in logger.handlers if getattr(h, "lgbpn_cli", False)]:
        logger.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.lgbpn_cli = True
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _positive(ctx, param, value):
    if value is not None and value <= 0:
        raise click.BadParameter(f"must be positive, got {value}")
    return value


def _training_options(f):
    """Options shared by `train` and `distill` (a contract: names never change)."""
    options = [
        click.option("--data", "data", multiple=True, required=True, type=click.Path(path_type=Path),
                     help="Folder (or SIDD .mat) of noisy training images; repeat for several."),
        click.option("--out", "out", required=True, type=click.Path(path_type=Path),
                     help="Run folder for checkpoints and logs."),
        click.option("--arch", help="Architecture (see `lgbpn models --arch`)."),
        click.option("--preset", type=click.Choice(["sidd", "dnd"]), help="PD factors / test ratios preset."),
        click.option("--steps", type=int, callback=_positive),
        click.option("--crop", type=int, callback=_positive),
        click.option("--batch", type=int, callback=_positive),
        click.option("--lr", type=float, callback=_positive),
        click.option("--workers", type=int, help="Data-loading worker processes."),
        click.option("--val", "val", multiple=True, type=click.Path(path_type=Path),
                     help="Folder with noisy/ and clean/ for validation PSNR/SSIM (default: clean refs found in --data)."),
        click.option("--val-every", type=int, callback=_positive),
        click.option("--exclude", multiple=True,
                     help="Leave out training images whose name (path relative to --data) matches this glob; "
                          "repeat for several (e.g. --exclude '*NikonD800*')."),
        click.option("--init", type=click.Path(path_type=Path), help="Start from these weights (ours or a reference .pth)."),
        click.option("--resume", is_flag=True, help="Continue the run in --out exactly where it stopped."),
        click.option("--stop-at", type=int, callback=_positive,
                     help="Pause at this step (checkpoint saved, schedule unchanged; --resume continues): a long "
                          "run in sittings."),
        click.option("--seed", type=int),
        click.option("--threads", type=int, callback=_positive, help="CPU threads (default: torch's choice)."),
        click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]),
                     help="auto (default): bf16 where the device has native bf16 units (AMX, AVX512-BF16, recent GPUs), "
                          "else fp32."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _not_negative(ctx, param, value):
    """Click callback: a count of steps (e.g. --adapt) may be 0 but not negative."""
    if value is not None and value < 0:
        raise click.BadParameter(f"must be >= 0, got {value}")
    return value


def _run_training(out, config_file, default_recipe_for, resume, threads, settings, run, arch_replaces_recipe=True):
    """Shared by `train` and `distill`: threads, the config (resumed run's, given, or the default
    recipe, announced), then `run(config)`, and the summary line. A training recipe belongs to one
    architecture, so --arch replaces it; a distillation recipe (teacher, targets) suits any student."""
    import torch

    from .train.config import make_config

    if threads:
        torch.set_num_threads(threads)
    if resume and config_file is None and (out / "config.yaml").exists():
        config_file = out / "config.yaml"
    if config_file is None and (settings.get("arch") is None or not arch_replaces_recipe):
        config_file, why = default_recipe_for("cuda" if torch.cuda.is_available() else "cpu")
        click.echo(f"recipe: {config_file.stem if config_file else 'the paper (lgbpn)'}; {why}. "
                   "Choose another with --config or --arch.", err=True)
    summary = run(make_config(config_file, **settings))
    if summary["stopped_by"]:
        click.echo(f"stopped by {summary['stopped_by']} at step {summary['step']}; resume with --resume", err=True)
    elif summary["converged"]:
        config = summary["config"]
        click.echo(f"converged at step {summary['step']}: the validation PSNR (network alone) gained "
                   f"{summary['converged']['gain']:+.3f} dB over the last {config.converged_window:.0%} of the steps "
                   f"(threshold {config.converged_gain} dB); best {summary['best_psnr']:.3f} dB, checkpoint "
                   f"{summary['checkpoint']}")
    else:
        click.echo(f"done: step {summary['step']}, checkpoint {summary['checkpoint']}")
    best = Path(summary["checkpoint"]).with_name("best.safetensors")
    score = "" if summary["best_psnr"] == float("-inf") else f" ({summary['select_key']} {summary['best_psnr']:.3f} dB)"
    click.echo(f"best: {best}{score}, selected by {summary['selected_by']}")


@main.command()
@_training_options
@click.option("--config", "config_file", type=click.Path(path_type=Path),
              help="YAML or TOML file of training settings, or a shipped recipe name (lgbpn-s, apbsn-s). "
                   "Default: lgbpn-s on a CPU, the paper's recipe on a GPU.")
def train(data, out, config_file, arch, preset, steps, crop, batch, lr, workers, val, val_every, exclude, init, resume,
          stop_at, seed, threads, precision):
    """Train a denoiser on your own noisy images (no clean images needed)."""
    from .train.config import default_recipe
    from .train.trainer import train as run_training

    settings = dict(arch=arch, preset=preset, steps=steps, crop=crop, batch=batch, lr=lr, workers=workers,
                    val_every=val_every, seed=seed, precision=precision, exclude=list(exclude) or None)
    _run_training(out, config_file, default_recipe, resume, threads, settings, lambda config: run_training(
        list(data), out, config, val=list(val) or None, init=init, resume=resume, stop_at=stop_at))


@main.command()
@_training_options
@click.option("--config", "config_file", type=click.Path(path_type=Path),
              help="YAML or TOML file of distillation settings, or a shipped recipe name. Default: lgbpn-fast.")
@click.option("--teacher", help="The blind-spot teacher: a shipped model name (lgbpn-s) or a weights file. "
                                "Default: the recipe's (lgbpn-s).")
@click.option("--settings", "teacher_settings",
              help="Comma-separated teacher test settings whose outputs are the targets, each "
                   "PRESET[:r3][:raw|:lightblend] (raw: without our corrections; lightblend: the Wiener blend only "
                   "on light noise), e.g. 'sidd,dnd:r3' (default: the recipe's).")
@click.option("--adapt", type=int, default=0, callback=_not_negative,
              help="Adapt to a camera: first fine-tune the teacher on the --data images for N self-supervised steps "
                   "(saved in the run folder as the run's teacher), then fine-tune the shipped student lgbpn-fast "
                   "(or --init) on its outputs with a short schedule (recipe lgbpn-fast-adapt: 2N steps unless --steps).")
@click.option("--clean", "clean_data", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of clean photos for simulated pairs (camera noise simulated on them, the clean photo the "
                   "target; scripts/build_clean_corpus.py builds a freely licensed set); repeat for several.")
@click.option("--simulated", type=click.FloatRange(0, 1),
              help="Share of the crops that are simulated pairs from --clean photos [the recipe's].")
def distill(data, out, config_file, arch, preset, steps, crop, batch, lr, workers, val, val_every, exclude, init, resume,
            stop_at, seed, threads, precision, teacher, teacher_settings, adapt, clean_data, simulated):
    """Distil a blind-spot teacher into a small ordinary network that is fast (no clean images needed)."""
    from .denoiser import DEFAULT_MODEL, pretrained_path
    from .train.config import ADAPT_RECIPE, ADAPT_STUDENT_STEPS, distill_recipe, recipes_dir
    from .train.distill import run_distillation

    settings = dict(arch=arch, preset=preset, steps=steps or (ADAPT_STUDENT_STEPS * adapt or None), crop=crop, batch=batch, lr=lr,
                    workers=workers, val_every=val_every, seed=seed, precision=precision,
                    exclude=list(exclude) or None, teacher=teacher,
                    teacher_settings=teacher_settings.split(",") if teacher_settings else None,
                    clean_data=[str(folder) for folder in clean_data] or None, simulated=simulated)
    if adapt and init is None:  # start from what ships, never from scratch
        init = pretrained_path(DEFAULT_MODEL)
    recipe = distill_recipe
    if adapt:
        def recipe(device_type):
            return recipes_dir() / f"{ADAPT_RECIPE}.yaml", f"--adapt: a short fine-tuning of {init.stem if init else 'the student'}"

    def run(config):
        if not config.teacher or not config.teacher_settings:
            raise click.UsageError("distillation needs a teacher and its settings (--teacher, --settings, or the recipe's)")
        return run_distillation(list(data), out, config, adapt, val=list(val) or None, init=init, resume=resume,
                                stop_at=stop_at)

    _run_training(out, config_file, recipe, resume, threads, settings, run, arch_replaces_recipe=False)


@dataclasses.dataclass(frozen=True)
class _ModelChoice:
    """What the shared model options name: the weights (--weights, or a shipped --model), and how to run them."""

    weights: Path | None
    name: str | None
    arch: str | None
    preset: str | None
    options: InferenceOptions

    def source(self) -> str:
        from .denoiser import DEFAULT_MODEL

        return str(self.weights) if self.weights is not None else self.name or DEFAULT_MODEL

    def load(self, default_preset: str | None = None, progress: bool = False):
        from .denoiser import Denoiser

        preset = self.preset or default_preset
        if self.weights is not None:
            return Denoiser.from_weights(self.weights, arch=self.arch, preset=preset, options=self.options, progress=progress)
        denoiser = Denoiser.from_pretrained(self.source(), preset=preset, options=self.options, progress=progress)
        if self.arch is not None and self.arch != denoiser.model.arch_name:
            raise click.UsageError(f"--arch {self.arch}: the shipped model {self.source()} is {denoiser.model.arch_name}; "
                                   "pass --weights for other architectures")
        return denoiser


def _model_options(corrections: bool = True):
    """Options shared by every command that runs a denoiser (a contract: names never change).

    The command receives them as one `model` argument, a `_ModelChoice`, checked before the command
    runs (a bad value exits 2 naming the option). `corrections`: the output corrections' default.
    """
    default = "on" if corrections else "off, the paper's output"
    options = [
        click.option("--weights", type=click.Path(path_type=Path), help="Weights file (ours .safetensors or a reference .pth)."),
        click.option("--model", "model_name", help="Shipped model name (see `lgbpn models`; `fast` = lgbpn-fast); default: the "
                     "shipped default."),
        click.option("--arch", help="Architecture of --weights (lgbpn, lgbpn-s, apbsn); read from the file when omitted."),
        click.option("--preset", type=click.Choice(PRESET_CHOICES),
                     help="Test-time PD factors and ratios: sidd (heavy phone noise), dnd, light (weak noise, smaller "
                          "blind patch), or auto (default): per image, light where the measured noise is weak and "
                          "the network runs alone, else sidd."),
        click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto."),
        click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
                     help="auto: bf16 where the device has native bf16 units (AMX, AVX512-BF16, recent GPUs), else fp32."),
        click.option("--tile", type=int,
                     help=f"Tile size in pixels (default {DEFAULT_TILE} for the blind-spot networks: images up to "
                          f"{DEFAULT_TILE}x{DEFAULT_TILE} are denoised whole, in about 3 GB with lgbpn-s, 10 GB with LG-BPN; "
                          f"{STUDENT_TILE} for a distilled student, whose output is the same at any tile; smaller tiles need "
                          "less memory). LG-BPN's output depends on the tile size: its channel attention sees the whole tile."),
        click.option("--overlap", type=int, default=DEFAULT_OVERLAP, show_default=True, help="Tile overlap in pixels."),
        click.option("--no-r3", "no_r3", is_flag=True, help="Skip random-replacing refinement (about 5x faster)."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of the R3 replacement masks."),
        click.option("--lowpass/--no-lowpass", default=corrections,
                     help=f"Low-frequency correction of the network's output (default: {default}); --no-lowpass "
                          "keeps the network's own low frequencies."),
        click.option("--blend/--no-blend", default=corrections,
                     help=f"Residual Wiener blend that gives back detail the network smoothed away (default: {default}). "
                          "A student distilled from corrected teacher outputs has learnt both corrections: they are "
                          "not applied again."),
        click.option("--teacher-fallback/--no-teacher-fallback", default=True,
                     help="A distilled student hands an image noisier than any it was distilled on to its blind-spot "
                          "teacher (default: on; slower on such images); --no-teacher-fallback keeps the student."),
        click.option("--keep-base/--no-keep-base", default=True,
                     help="A student adapted with --adapt keeps the output of the student it was fine-tuned from (the "
                          f"shipped one) in every {KEEP_BASE_REGION}-pixel region unless the adapted one scores better "
                          f"against a second noisy view by more than {KEEP_BASE_MARGIN:.1%} (default: on; logged)."),
        click.option("--guard/--no-guard", default=corrections,
                     help=f"A distilled student gives the input back where it removed far more than noise, structure "
                          f"it erased (default: {default}); --no-guard keeps the student's own output."),
        click.option("--coarse", type=click.Choice(["auto", "on", "off"]), default="off",
                     show_default=True,
                     help="A student also runs on the halved image and takes the colour of its coarse detail from it, "
                          "against coarse colour blotches (about a quarter more network time); auto: where the "
                          "measured noise is heavy. The shipped student no longer needs it."),
        click.option("--ensemble", type=click.Choice([str(n) for n in ENSEMBLE_SIZES]), default="1", show_default=True,
                     help="A student's output averaged over this many flips and rotations of the image (each undone): "
                          "that many times the network's time for a cleaner output (8: +0.1 dB on unseen cameras)."),
        click.option("--strength", type=float, default=1.0, show_default=True,
                     help=f"How strongly to denoise: 0 gives the input back, 1 the default output, up to {MAX_STRENGTH:g} "
                          "stronger (below 1 a blend with the input; above 1 a second pass over the output blended in)."),
    ]

    def decorate(command):
        @functools.wraps(command)
        def run(*args, weights, model_name, arch, preset, device, precision, tile, overlap, no_r3, seed, lowpass, blend,
                teacher_fallback, guard, keep_base, coarse, ensemble, strength, **kwargs):
            if weights is not None and model_name is not None:
                raise click.UsageError("give either --weights or --model, not both")
            try:
                options = InferenceOptions(device=device, precision=precision, r3=not no_r3, seed=seed, tile=tile,
                                           overlap=overlap, blend=blend, teacher_fallback=teacher_fallback, guard=guard,
                                           keep_base=keep_base, strength=strength,
                                           coarse={"auto": "auto", "on": True, "off": False}[coarse],
                                           ensemble=int(ensemble),
                                           **({} if lowpass else {"lowpass_sigma": None}))
            except OptionError as exc:
                raise click.BadParameter(exc.problem, param_hint=f"--{exc.option}") from None
            return command(*args, model=_ModelChoice(weights, model_name, arch, preset, options), **kwargs)

        for option in reversed(options):
            run = option(run)
        return run

    return decorate


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", "output", required=True, type=click.Path(path_type=Path),
              help="Output file (one input file) or folder (several inputs or a folder).")
@_model_options()
@click.option("--skip-existing", is_flag=True, help="Skip inputs whose output already exists (resume a batch).")
@click.option("--adapt", type=int, default=0, callback=_not_negative,
              help="Adapt to these photos first (self-supervised, N steps). A blind-spot network fine-tunes itself; "
                   "a distilled student (the default) is fine-tuned from its own weights by --adapt-route and saved "
                   "beside the outputs (lgbpn-adapted.safetensors, for --weights); it keeps its own output wherever "
                   "that scores better.")
@click.option("--adapt-route", type=click.Choice(ADAPT_ROUTES), default="self", show_default=True,
              help="How a distilled student adapts: self, on the photos' own recorrupted pairs (noisy input y + z, "
                   "target y - z, z its own residual moved); teacher, its blind-spot teacher adapts N steps and "
                   "the student learns its outputs for 2N.")
@click.option("--png-compression", type=click.IntRange(0, 9),
              help="zlib level of PNG outputs, 0 (fastest, largest) to 9 (smallest, slowest); every level is lossless "
                   "[default 1: about 5x faster than 6, Pillow's default, for files about 15% larger].")
def denoise(inputs, output, model, skip_existing, adapt, adapt_route, png_compression):
    """Denoise image files or folders (PNG, JPEG, TIFF; 8/16-bit; grey, RGB, RGBA; camera raw: DNG, NEF, CR2, CR3,
    ARW, RAF, ORF, RW2, developed to 16-bit sRGB and written as 16-bit TIFF unless -o names a .png or .jpg)."""
    from .batch import denoise_files, plan_outputs

    if _EXIT_WITHOUT_TEARDOWN:
        _keep_freed_memory()
    jobs = plan_outputs(list(inputs), output)
    writing = {} if png_compression is None else {"png_compression": png_compression}
    # The model's name only matters to --adapt; naming it imports torch, which the first photo's decode overlaps otherwise.
    code = denoise_files(model.load, jobs, skip_existing=skip_existing, adapt_steps=adapt,
                         source=model.source() if adapt else None, adapt_route=adapt_route, **writing)
    _leave(code)


@main.command()
@click.option("-o", "--output", "output", type=click.Path(path_type=Path), default=Path("lgbpn-demo"), show_default=True)
@_model_options()
def demo(output, model):
    """Denoise a built-in photo with realistic camera noise (no files needed) and score it."""
    from .demo import run_demo

    run_demo(model.load(progress=True), output, model.source())


@main.command()
@click.option("--arch", "show_arch", is_flag=True, help="List the architectures instead of the shipped models.")
def models(show_arch):
    """List the shipped pretrained models (with their headline scores) or the architectures."""
    from .denoiser import DEFAULT_MODEL, pretrained_dir, pretrained_names
    from .models.registry import ARCHITECTURES

    if show_arch:
        for name, spec in ARCHITECTURES.items():
            click.echo(f"{name:10s} {spec.description}")
        return
    for name in pretrained_names():
        card = pretrained_dir() / f"{name}.md"
        headline = next((line.removeprefix("Headline:").strip() for line in card.read_text().splitlines()
                         if line.startswith("Headline:")), "") if card.exists() else ""
        click.echo(f"{name:10s}{' (default)' if name == DEFAULT_MODEL else '':10s} {headline}")


@main.command("eval")
@click.option("--data", type=click.Path(path_type=Path), help="Paired dataset (noisy/ + clean/, SIDD .mat, ...).")
@click.option("--pred", type=click.Path(path_type=Path), help="Folder of existing results to score (with --clean).")
@click.option("--clean", type=click.Path(path_type=Path), help="Folder of clean references for --pred.")
@_model_options()
@click.option("--limit", type=int, callback=_positive, help="Score only the first N pairs.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write per-image and mean scores as JSON.")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), help="Write per-image scores as CSV.")
def eval_command(data, pred, clean, model, limit, json_path, csv_path):
    """PSNR/SSIM against clean references (uint8 rounding, data range 255, per-image mean)."""
    from .evaluate import evaluate_folders, evaluate_model, format_table, save_results

    if (data is None) == (pred is None):
        raise click.UsageError("give either --data (score a model) or --pred with --clean (score results)")
    if pred is not None:
        if clean is None:
            raise click.UsageError("--pred needs --clean")
        rows, info = evaluate_folders(pred, clean), {"pred": str(pred), "clean": str(clean)}
    else:
        denoiser = model.load()
        rows = evaluate_model(denoiser, data, limit)
        info = {"data": str(data), "model": denoiser.model.arch_name, "weights": model.source(),
                **dataclasses.asdict(model.options)}
        info["tile"] = info["tile"] or denoiser.model.default_tile()  # the tile that ran, not None
    click.echo(format_table(rows))
    save_results(rows, json_path, csv_path, info)


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="PNG to write (default RUN_DIR/curves.png).")
def plot(run_dir, output):
    """Draw a training run's loss, learning rate and validation PSNR curves to a PNG."""
    from .train.plot import plot_run

    path = plot_run(run_dir, output)
    click.echo(f"wrote {path}")


@main.command()
@click.argument("benchmark", type=click.Choice(["sidd", "dnd"]))
@click.option("--data", required=True, type=click.Path(path_type=Path, exists=True),
              help="SIDD: BenchmarkNoisyBlocksSrgb.mat; DND: the folder with info.mat and images_srgb/.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Output folder.")
@_model_options(corrections=False)
def submit(benchmark, data, output, model):
    """Write a SIDD (CSV + .mat) or DND (per-image .mat bundle) benchmark submission.

    The network's own output by default, as in the paper; --lowpass and --blend add our corrections
    (and the SIDD file's MethodName says so).
    """
    from .data.submit import denoise_dnd, denoise_sidd_benchmark

    denoiser = model.load(default_preset=benchmark)
    method = f"{denoiser.model.arch_name} ({model.options.describe()})"
    if benchmark == "sidd":
        paths = denoise_sidd_benchmark(data, denoiser, output, method)
        click.echo(f"{method}: wrote " + ", ".join(str(p) for p in paths.values()))
    else:
        click.echo(f"{method}: wrote {denoise_dnd(data, denoiser, output)}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; the default serves only this computer.")
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True)
def ui(host, port):
    """A local web page: drop photos, choose the model and strength, compare before and after at 1:1, download."""
    try:
        import uvicorn

        from .ui.app import create_app
    except ImportError as exc:
        raise LgbpnError(f"lgbpn ui: the page needs the ui extra ({exc.name} is missing): pip install -e '.[ui]'") from None
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: listening on {host}: other computers that reach it can use the page", err=True)
    click.echo(f"lgbpn ui: open http://{'[' + host + ']' if ':' in host else host}:{port}/ (Ctrl-C stops it)")
    uvicorn.run(create_app(), host=host, port=port, log_level="warning")


main.add_command(bench_command)
