"""`lgbpn` command line: denoise, train, eval, plot, demo, models, bench, submit."""

import logging
import sys
from pathlib import Path

import click

from .bench import bench_command
from .errors import LgbpnError


class _Main(click.Group):
    """Our own errors become one line on stderr and exit code 1, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except LgbpnError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=_Main)
@click.version_option(package_name="lgbpn")
def main():
    """Self-supervised real-world image denoising (LG-BPN, AP-BSN)."""
    # Library modules report through logging; the command line shows their messages on stderr.
    logging.basicConfig(level=logging.INFO, format="%(message)s")


def _positive(ctx, param, value):
    if value is not None and value <= 0:
        raise click.BadParameter(f"must be positive, got {value}")
    return value


@main.command()
@click.option("--data", "data", multiple=True, required=True, type=click.Path(path_type=Path),
              help="Folder (or SIDD .mat) of noisy training images; repeat for several.")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Run folder for checkpoints and logs.")
@click.option("--config", "config_file", type=click.Path(path_type=Path),
              help="YAML or TOML file of training settings, or a shipped recipe name (lgbpn-s, apbsn-s). "
                   "Default: lgbpn-s on a CPU, the paper's recipe on a GPU.")
@click.option("--arch", help="Architecture (see `lgbpn models --arch`).")
@click.option("--preset", type=click.Choice(["sidd", "dnd"]), help="PD factors / test ratios preset.")
@click.option("--steps", type=int, callback=_positive)
@click.option("--crop", type=int, callback=_positive)
@click.option("--batch", type=int, callback=_positive)
@click.option("--lr", type=float, callback=_positive)
@click.option("--workers", type=int, help="Data-loading worker processes.")
@click.option("--val", "val", multiple=True, type=click.Path(path_type=Path),
              help="Folder with noisy/ and clean/ for validation PSNR/SSIM (default: clean refs found in --data).")
@click.option("--val-every", type=int, callback=_positive)
@click.option("--init", type=click.Path(path_type=Path), help="Start from these weights (ours or a reference .pth).")
@click.option("--resume", is_flag=True, help="Continue the run in --out exactly where it stopped.")
@click.option("--seed", type=int)
@click.option("--threads", type=int, callback=_positive, help="CPU threads (default: torch's choice).")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]),
              help="auto (default): bf16 where the device has native bf16 units (AMX, AVX512-BF16, recent GPUs), else fp32.")
def train(data, out, config_file, arch, preset, steps, crop, batch, lr, workers, val, val_every, init, resume, seed, threads,
          precision):
    """Train a denoiser on your own noisy images (no clean images needed)."""
    import torch

    from .train.config import default_recipe, make_config
    from .train.trainer import train as run_training

    if threads:
        torch.set_num_threads(threads)
    if resume and config_file is None and (out / "config.yaml").exists():
        config_file = out / "config.yaml"
    if config_file is None and arch is None:
        config_file, why = default_recipe("cuda" if torch.cuda.is_available() else "cpu")
        click.echo(f"recipe: {config_file.stem if config_file else 'the paper (lgbpn)'}; {why}. "
                   "Choose another with --config or --arch.", err=True)
    config = make_config(config_file, arch=arch, preset=preset, steps=steps, crop=crop, batch=batch, lr=lr,
                         workers=workers, val_every=val_every, seed=seed, precision=precision)
    summary = run_training(list(data), out, config, val=list(val) or None, init=init, resume=resume)
    if summary["stopped_by"]:
        click.echo(f"stopped by {summary['stopped_by']} at step {summary['step']}; resume with --resume", err=True)
    else:
        click.echo(f"done: step {summary['step']}, best validation PSNR {summary['best_psnr']:.3f} dB, "
                   f"checkpoint {summary['checkpoint']}")


def _make_denoiser(weights, model_name, arch, preset, device, tile, overlap, r3, seed, progress=False, lowpass=True,
                   blend=True):
    from .denoiser import DEFAULT_MODEL, Denoiser

    options = dict(device=device, r3=r3, seed=seed, tile=tile, overlap=overlap, progress=progress, blend=blend)
    if not lowpass:
        options["lowpass_sigma"] = None
    if weights is not None and model_name is not None:
        raise click.UsageError("give either --weights or --model, not both")
    if weights is not None:
        return Denoiser.from_weights(weights, arch=arch, preset=preset, **options)
    denoiser = Denoiser.from_pretrained(model_name or DEFAULT_MODEL, preset=preset, **options)
    if arch is not None and arch != denoiser.model.arch_name:
        raise click.UsageError(f"--arch {arch}: the shipped model {model_name or DEFAULT_MODEL} is {denoiser.model.arch_name}; "
                               "pass --weights for other architectures")
    return denoiser


def _model_options(f):
    """Options shared by every command that runs a denoiser (a contract: names never change)."""
    options = [
        click.option("--weights", type=click.Path(path_type=Path), help="Weights file (ours .safetensors or a reference .pth)."),
        click.option("--model", "model_name", help="Shipped model name (see `lgbpn models`); default: the shipped default."),
        click.option("--arch", help="Architecture of --weights (lgbpn, lgbpn-s, apbsn); read from the file when omitted."),
        click.option("--preset", type=click.Choice(["sidd", "dnd"]), help="PD factors and test ratios (SIDD-like or DND-like noise)."),
        click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto."),
        click.option("--tile", type=int, callback=_positive, help="Tile size in pixels (default 512)."),
        click.option("--overlap", type=int, help="Tile overlap in pixels (default 48)."),
        click.option("--no-r3", "no_r3", is_flag=True, help="Skip random-replacing refinement (about 5x faster)."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of the R3 replacement masks."),
        click.option("--no-lowpass", "no_lowpass", is_flag=True,
                     help="Keep the network's own low frequencies (skip the low-frequency correction)."),
        click.option("--no-blend", "no_blend", is_flag=True,
                     help="Skip the residual Wiener blend that gives back detail the network smoothed away."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", "output", required=True, type=click.Path(path_type=Path),
              help="Output file (one input file) or folder (several inputs or a folder).")
@_model_options
@click.option("--skip-existing", is_flag=True, help="Skip inputs whose output already exists (resume a batch).")
@click.option("--adapt", type=int, default=0, help="Fine-tune on the input images for N steps first (self-supervised).")
def denoise(inputs, output, weights, model_name, arch, preset, device, tile, overlap, no_r3, seed, no_lowpass, no_blend, skip_existing, adapt):
    """Denoise image files or folders (PNG, JPEG, TIFF; 8/16-bit; grey, RGB, RGBA)."""
    from .batch import denoise_files, plan_outputs

    if overlap is not None and overlap < 0:
        raise click.BadParameter(f"must be >= 0, got {overlap}", param_hint="--overlap")
    if adapt < 0:
        raise click.BadParameter(f"must be >= 0, got {adapt}", param_hint="--adapt")
    jobs = plan_outputs(list(inputs), output)
    denoiser = _make_denoiser(weights, model_name, arch, preset, device, tile, overlap, not no_r3, seed, lowpass=not no_lowpass, blend=not no_blend)
    code = denoise_files(denoiser, jobs, skip_existing=skip_existing, adapt_steps=adapt)
    sys.exit(code)


@main.command()
@click.option("-o", "--output", "output", type=click.Path(path_type=Path), default=Path("lgbpn-demo"), show_default=True)
@_model_options
def demo(output, weights, model_name, arch, preset, device, tile, overlap, no_r3, seed, no_lowpass, no_blend):
    """Denoise a built-in photo with realistic camera noise (no files needed) and score it."""
    from .demo import run_demo

    denoiser = _make_denoiser(weights, model_name, arch, preset, device, tile, overlap, not no_r3, seed, progress=True, lowpass=not no_lowpass, blend=not no_blend)
    run_demo(denoiser, output)


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
@_model_options
@click.option("--limit", type=int, callback=_positive, help="Score only the first N pairs.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write per-image and mean scores as JSON.")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), help="Write per-image scores as CSV.")
def eval_command(data, pred, clean, weights, model_name, arch, preset, device, tile, overlap, no_r3, seed, no_lowpass, no_blend, limit,
                 json_path, csv_path):
    """PSNR/SSIM against clean references (uint8 rounding, data range 255, per-image mean)."""
    from .evaluate import evaluate_folders, evaluate_model, format_table, save_results

    if (data is None) == (pred is None):
        raise click.UsageError("give either --data (score a model) or --pred with --clean (score results)")
    if pred is not None:
        if clean is None:
            raise click.UsageError("--pred needs --clean")
        rows, info = evaluate_folders(pred, clean), {"pred": str(pred), "clean": str(clean)}
    else:
        denoiser = _make_denoiser(weights, model_name, arch, preset, device, tile, overlap, not no_r3, seed, lowpass=not no_lowpass, blend=not no_blend)
        rows = evaluate_model(denoiser, data, limit)
        info = {"data": str(data), "model": denoiser.model.arch_name, "r3": denoiser.r3,
                "weights": str(weights) if weights else (model_name or "default")}
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
@_model_options
def submit(benchmark, data, output, weights, model_name, arch, preset, device, tile, overlap, no_r3, seed, no_lowpass, no_blend):
    """Write a SIDD (CSV + .mat) or DND (per-image .mat bundle) benchmark submission."""
    from .data.submit import denoise_dnd, denoise_sidd_benchmark

    denoiser = _make_denoiser(weights, model_name, arch, preset or benchmark, device, tile, overlap, not no_r3, seed, lowpass=not no_lowpass, blend=not no_blend)
    if benchmark == "sidd":
        paths = denoise_sidd_benchmark(data, denoiser, output)
        click.echo("wrote " + ", ".join(str(p) for p in paths.values()))
    else:
        click.echo(f"wrote {denoise_dnd(data, denoiser, output)}")


main.add_command(bench_command)
