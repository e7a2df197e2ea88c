"""`lgbpn` command line: denoise, train, eval, plot, demo, models, bench, submit."""

import sys
from pathlib import Path

import click

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


def _positive(ctx, param, value):
    if value is not None and value <= 0:
        raise click.BadParameter(f"must be positive, got {value}")
    return value


@main.command()
@click.option("--data", "data", multiple=True, required=True, type=click.Path(path_type=Path),
              help="Folder (or SIDD .mat) of noisy training images; repeat for several.")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Run folder for checkpoints and logs.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="YAML or TOML file of training settings.")
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
def train(data, out, config_file, arch, preset, steps, crop, batch, lr, workers, val, val_every, init, resume, seed, threads):
    """Train a denoiser on your own noisy images (no clean images needed)."""
    import torch

    from .train.config import make_config, read_config_file
    from .train.trainer import train as run_training

    if threads:
        torch.set_num_threads(threads)
    if resume and config_file is None and (out / "config.yaml").exists():
        config_file = out / "config.yaml"
    config = make_config(config_file, arch=arch, preset=preset, steps=steps, crop=crop, batch=batch, lr=lr,
                         workers=workers, val_every=val_every, seed=seed)
    summary = run_training(list(data), out, config, val=list(val) or None, init=init, resume=resume)
    if summary["stopped_by"]:
        click.echo(f"stopped by {summary['stopped_by']} at step {summary['step']}; resume with --resume", err=True)
    else:
        click.echo(f"done: step {summary['step']}, best validation PSNR {summary['best_psnr']:.3f} dB, "
                   f"checkpoint {summary['checkpoint']}")
