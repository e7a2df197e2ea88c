"""The `lgbpn bench` command. Importing it is cheap: the harness (torch, the models) loads when it runs."""

import logging
from pathlib import Path

import click

from .plan import (
    COMPARE_DATA,
    COMPARE_PLAN,
    COMPARE_THREADS,
    FOLDER_PHOTOS,
    MODELS,
    QUICK_COMPARE_PLAN,
    QUICK_FULL_MODEL,
    QUICK_SIZE,
    SUMMARY_MODEL,
)


def _int_list(ctx, param, value):
    if value is None:
        return None
    try:
        sizes = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not sizes or min(sizes) <= 0:
        raise click.BadParameter(f"expected positive sizes, got {value!r}")
    return sizes


def _model_list(ctx, param, value):
    if value is None:
        return None
    from ..models import ARCHITECTURES

    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = sorted(set(names) - set(ARCHITECTURES))
    if not names or unknown:
        raise click.BadParameter(f"unknown model(s) {unknown}; choose from {sorted(ARCHITECTURES)}")
    return names


def _image_count(ctx, param, value):
    if value is None or value == "all":
        return value
    if not value.isdigit() or int(value) < 1:
        raise click.BadParameter(f"expected a positive number or 'all', got {value!r}")
    return int(value)


@click.command("bench")
@click.option("--quick", is_flag=True, help=f"Smoke run (~1 min): {QUICK_SIZE}x{QUICK_SIZE}, one run, no warm-up, "
              f"R3 and training for {QUICK_FULL_MODEL} only, no 12 MP photo.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to save the results [lgbpn-bench.json; --compare: lgbpn-compare.json].")
@click.option("--sizes", callback=_int_list, help="Square image sides, comma-separated [256,512,1024].")
@click.option("--models", callback=_model_list, help=f"Architectures, comma-separated [{','.join(MODELS)}].")
@click.option("--repeats", type=click.IntRange(min=1), help="Timed runs per case, median reported [3; quick 1].")
@click.option("--threads", type=click.IntRange(min=1),
              help=f"CPU threads [torch's default; --compare: {COMPARE_THREADS}].")
@click.option("--photo/--no-photo", default=None, help="Include the 12 MP photo (tiled) [on; quick off].")
@click.option("--profile", is_flag=True,
              help=f"Only print torch.profiler's top-10 ops for one {SUMMARY_MODEL} test pass "
                   "at 256x256 (quick: 64x64).")
@click.option("--compare", is_flag=True,
              help="Instead: our student and teacher beside OpenCV non-local means, BM3D and Open Image Denoise "
                   "(those installed; `pip install lgbpn[bench]`), timed on one 12 MP photo and scored on --data, "
                   f"plus `lgbpn denoise` on that photo end to end, and the whole pipeline against OpenCV's loop "
                   f"(one PNG, a folder of {FOLDER_PHOTOS} JPEGs, one photo's stages; not in quick) "
                   f"(~15 min on 2 cores; {COMPARE_THREADS} threads "
                   f"unless --threads; quick: a {QUICK_COMPARE_PLAN.photo[1]}x{QUICK_COMPARE_PLAN.photo[0]} photo "
                   f"and one {QUICK_COMPARE_PLAN.image_crop}x{QUICK_COMPARE_PLAN.image_crop} crop per subset).")
@click.option("--compare-images", callback=_image_count,
              help=f"--compare: images per subset for PSNR, spread over the sorted names, or 'all' "
                   f"[{COMPARE_PLAN.images}; quick {QUICK_COMPARE_PLAN.images}].")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=COMPARE_DATA, show_default=True,
              help="--compare: the data root with sidd_samples/ and polyu/ (noisy/ and clean/ in each).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              help="--compare: the PSNR-against-time plot [the --json path with .png].")
def bench_command(quick, device, json_path, sizes, models, repeats, threads, photo, profile, compare, compare_images,
                  data, plot_path):
    """Benchmark our inference path against the reference's: time, memory, MACs, training speed.
    With --compare: against the denoisers a user would pick instead."""
    import torch

    # Run on its own (benchmarks/run_bench.py) too: show the harness's progress lines on stderr.
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if compare:
        given = (("--sizes", sizes), ("--models", models), ("--repeats", repeats), ("--photo/--no-photo", photo),
                 ("--profile", profile or None), ("--device", None if device == "cpu" else device))
        ignored = [name for name, value in given if value is not None]
        if ignored:
            raise click.UsageError(f"--compare runs on the CPU on its own plan; drop {', '.join(ignored)}")
        _compare(quick, json_path or Path("lgbpn-compare.json"), threads or COMPARE_THREADS, compare_images, data,
                 plot_path)
        return
    if compare_images is not None or plot_path is not None:
        raise click.UsageError("--compare-images and --plot apply to --compare only")

    from .cases import profile_test_pass
    from .harness import run_benchmark
    from .report import format_table, write_json

    if device == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("CUDA is not available on this machine", param_hint="--device")
    if profile:
        click.echo(profile_test_pass(device, 64 if quick else 256, threads))
        return
    result = run_benchmark(quick, device, sizes, models, repeats, threads, photo)
    click.echo(format_table(result))
    json_path = json_path or Path("lgbpn-bench.json")
    write_json(result, json_path)
    click.echo(f"saved {json_path}", err=True)


def _compare(quick, json_path, threads, images, data, plot_path):
    from dataclasses import replace

    from .compare import run_compare
    from .report import format_compare_table, plot_compare, write_json

    plan = QUICK_COMPARE_PLAN if quick else COMPARE_PLAN
    if images is not None:
        plan = replace(plan, images=None if images == "all" else images)
    try:
        result = run_compare(plan, data, threads, quick)
    except FileNotFoundError as exc:
        raise click.BadParameter(str(exc), param_hint="--data") from None
    click.echo(format_compare_table(result))
    write_json(result, json_path)
    plot_path = plot_path or json_path.with_suffix(".png")
    plot_compare(result, plot_path)
    click.echo(f"saved {json_path} and {plot_path}", err=True)
