"""Training end to end on real noisy images: resume is exact, DDP equals one process, eval and plot."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from lgbpn.cli import main
from lgbpn.data.crops import NoisyCrops, StepSampler
from lgbpn.errors import ConfigError
from lgbpn.train.config import make_config
from lgbpn.train.trainer import train

from .conftest import ROOT
from .helpers import NEEDS_BF16_UNITS, TINY


def tiny_config(**kw):
    base = dict(arch="lgbpn-s", model=TINY["lgbpn-s"], steps=4, crop=40, batch=2, lr=1e-3, val_every=2,
                val_images=1, val_crop=48, checkpoint_every=2, log_every=1)
    return make_config(**{**base, **kw})


@pytest.mark.slow
def test_resume_after_interruption_is_exact(tmp_path, shared_data):
    data = [shared_data / "sidd_samples"]
    full = train(data, tmp_path / "full", tiny_config(), progress=False)
    part = train(data, tmp_path / "part", tiny_config(), progress=False, stop_at=2)
    assert part["step"] == 2 and part["stopped_by"] == "--stop-at 2"
    with pytest.raises(ConfigError, match="at step 2; nothing to do"):
        train(data, tmp_path / "part", tiny_config(), progress=False, resume=True, stop_at=2)
    with pytest.raises(ConfigError, match="--resume"):
        train(data, tmp_path / "part", tiny_config(), progress=False)
    resumed = train(data, tmp_path / "part", tiny_config(), progress=False, resume=True)
    assert resumed["step"] == 4
    for (name, a), b in zip(full["model"].state_dict().items(), resumed["model"].state_dict().values()):
        assert torch.equal(a, b), name
    # The log is continuous (no duplicated steps) and validation ran with clean references.
    with open(tmp_path / "part" / "log.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert all(float(r["val_psnr"]) > 0 for r in rows if r["val_psnr"])
    assert (tmp_path / "part" / "best.safetensors").exists() and (tmp_path / "part" / "config.yaml").exists()

    # Plot and evaluate the trained weights through the CLI.
    runner = CliRunner()
    result = runner.invoke(main, ["plot", str(tmp_path / "part")], catch_exceptions=False)
    assert result.exit_code == 0 and (tmp_path / "part" / "curves.png").stat().st_size > 1000
    out_json = tmp_path / "eval.json"
    result = runner.invoke(main, ["eval", "--data", str(shared_data / "sidd_samples"), "--weights",
                                  str(tmp_path / "part" / "last.safetensors"), "--no-r3", "--limit", "2",
                                  "--json", str(out_json)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(out_json.read_text())
    assert len(report["images"]) == 2 and 10 < report["mean"]["noisy_psnr"] < 40


def test_crops_are_deterministic_and_sharded_like_one_process(shared_data):
    from lgbpn.data.formats import discover

    crops = NoisyCrops(discover(shared_data / "polyu"), crop=32, seed=5)
    assert torch.equal(crops[17], crops[17]) and not torch.equal(crops[17], crops[18])
    single = list(StepSampler(3, 6, 8))
    ranks = [list(StepSampler(3, 6, 8, rank=r, world=4)) for r in range(4)]
    per_step = [sum((ranks[r][s * 2 : s * 2 + 2] for r in range(4)), []) for s in range(3)]
    assert sum(per_step, []) == single


def test_small_images_are_mirrored_with_a_warning(tmp_path):
    from lgbpn.data.formats import Sample

    img = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    crops = NoisyCrops([Sample("small", lambda: img, None)], crop=48)
    with pytest.warns(UserWarning, match="smaller than the 48 crop"):
        assert crops[0].shape == (3, 48, 48)


def test_config_file_errors_name_the_key(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("stepz: 10\n")
    with pytest.raises(ConfigError, match="stepz"):
        make_config(bad)
    bad.write_text("steps: ten\n")
    with pytest.raises(ConfigError, match="steps"):
        make_config(bad)
    good = tmp_path / "c.toml"
    good.write_text('steps = 7\narch = "apbsn"\n')
    config = make_config(good, steps=9)
    assert config.steps == 9 and config.arch == "apbsn" and config.crop == 120  # flags over file over defaults
    with pytest.raises(ConfigError, match="crop"):
        make_config(crop=0)


# In bf16 each rank's half batch rounds differently from one process's whole batch, and Adam moves a weight
# by up to lr a step however small its gradient: where the rounding flips a near-zero gradient's sign, that
# weight differs by up to lr per step. The rest must still agree as closely as in fp32.
@pytest.mark.slow
@pytest.mark.parametrize("precision, close_share", [("fp32", 1.0), pytest.param("bf16", 0.99, marks=NEEDS_BF16_UNITS)])
def test_two_process_gloo_matches_single_process(tmp_path, shared_data, precision, close_share):
    data = shared_data / "polyu"
    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           str(ROOT / "tests" / "ddp_worker.py"), str(data), str(out), precision]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rank0, rank1 = (torch.load(out / f"rank{r}.pt") for r in (0, 1))
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    torch.set_num_threads(1)
    config = make_config(arch="lgbpn-s", model=TINY["lgbpn-s"], steps=3, crop=40, batch=4, lr=1e-3, val_every=1000,
                         checkpoint_every=1000, log_every=1, precision=precision)
    single = train([data], tmp_path / "single", config, progress=False)["model"].state_dict()
    torch.set_num_threads(2)
    ddp, one = (torch.cat([weights[name].flatten() for name in rank0]) for weights in (rank0, single))
    diff = (ddp - one).abs()
    assert (diff <= 1e-5 + 1e-4 * one.abs()).float().mean() >= close_share
    assert diff.max() <= config.steps * config.lr
    assert (out / "last.pt").exists() and not (out / "rank1").exists()


def test_warmup_then_cosine_schedule():
    from lgbpn.train.trainer import _lr_factor

    factor = _lr_factor(tiny_config(steps=100, schedule="cosine", warmup_steps=10))
    cosine = [0.5 * (1 + np.cos(np.pi * s / 100)) for s in (0, 4, 9)]
    assert [factor(s) for s in (0, 4, 9)] == pytest.approx([0.1 * cosine[0], 0.5 * cosine[1], 1.0 * cosine[2]])
    assert factor(50) == pytest.approx(0.5) and factor(100) == pytest.approx(0.0, abs=1e-12)
    step_factor = _lr_factor(tiny_config(steps=100, lr_step=30, lr_gamma=0.1))  # the reference's: no warm-up
    assert step_factor(0) == 1.0 and step_factor(30) == pytest.approx(0.1)


def test_precision_auto_uses_bf16_only_on_native_units(monkeypatch):
    from lgbpn import precision

    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": False)
    assert precision.resolve_precision("auto") == "fp32" and precision.resolve_precision("bf16") == "bf16"
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": True)
    assert precision.resolve_precision("auto") == "bf16" and precision.resolve_precision("fp32") == "fp32"
    with pytest.raises(ConfigError, match="precision"):
        precision.resolve_precision("fp16")
    conv = torch.nn.Conv2d(3, 4, 3)
    with precision.autocast("bf16"):
        assert conv(torch.rand(1, 3, 8, 8)).dtype == torch.bfloat16
    with precision.autocast("fp32"):
        assert conv(torch.rand(1, 3, 8, 8)).dtype == torch.float32


@pytest.mark.slow
def test_ema_run_resumes_exactly_and_ships_the_average(tmp_path, shared_data):
    from lgbpn.weights import read_weights

    data = [shared_data / "polyu"]
    config = tiny_config(ema_decay=0.9, warmup_steps=2, val_every=4)
    full = train(data, tmp_path / "full", config, progress=False)
    train(data, tmp_path / "part", config, progress=False, stop_at=3)
    resumed = train(data, tmp_path / "part", config, progress=False, resume=True)
    for (name, a), b in zip(full["model"].state_dict().items(), resumed["model"].state_dict().values()):
        assert torch.equal(a, b), name
    # The shipped weights are the average, not the last step's weights.
    raw = torch.load(tmp_path / "full" / "last.pt", weights_only=True)["model"]
    shipped, _ = read_weights(tmp_path / "full" / "last.safetensors")
    assert all(torch.equal(shipped[k], v) for k, v in full["model"].state_dict().items())
    assert any(not torch.equal(shipped[k], raw[k]) for k in raw)
    with open(tmp_path / "full" / "log.csv") as fh:
        row = [r for r in csv.DictReader(fh) if r["val_psnr"]][-1]
    assert float(row["val_psnr_corrected"]) > 0 and float(row["val_psnr"]) > 0


@pytest.mark.slow
def test_bf16_training_steps_are_finite(tmp_path, shared_data):
    # Twice in one process: channels-last bf16 depthwise-conv gradients went NaN on a second run.
    for run in range(2):
        summary = train([shared_data / "polyu"], tmp_path / f"bf16-{run}",
                        tiny_config(precision="bf16", steps=6, val_every=100), progress=False)
        assert summary["precision"] == "bf16" and summary["step"] == 6
        assert all(torch.isfinite(p).all() for p in summary["model"].parameters())


def test_validation_subset_covers_every_set():
    from lgbpn.train.trainer import validation_subset

    samples = [f"a{i}" for i in range(10)] + [f"b{i}" for i in range(50)]
    picked = validation_subset(samples, 6)
    assert len(picked) == 6 and picked[0] == "a0" and picked[-1] == "b49"
    assert validation_subset(samples[:3], 6) == samples[:3]


@pytest.mark.slow
def test_train_without_config_picks_the_slim_recipe_on_cpu(tmp_path, shared_data):
    import yaml

    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--data", str(shared_data / "sidd_samples"), "--out", str(out),
                                       "--steps", "1", "--crop", "40", "--batch", "2", "--threads", "2"])
    assert result.exit_code == 0, result.output
    assert "recipe: lgbpn-s; no GPU" in result.stderr
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["arch"] == "lgbpn-s" and saved["ema_decay"] > 0 and saved["steps"] == 1
    # A shipped recipe by name; an unknown name is refused with the choices.
    result = CliRunner().invoke(main, ["train", "--data", str(shared_data / "sidd_samples"), "--out",
                                       str(tmp_path / "r2"), "--config", "nosuchrecipe", "--steps", "1"])
    assert result.exit_code == 1 and "lgbpn-s" in result.stderr and "nosuchrecipe" in result.stderr


def test_init_applies_the_config_model_settings(tmp_path, shared_data):
    from lgbpn.errors import WeightsError
    from lgbpn.weights import read_weights

    from .helpers import tiny_weights

    init = tiny_weights(tmp_path / "init.safetensors")  # lgbpn-s with TINY settings
    data = [shared_data / "polyu"]
    with pytest.raises(WeightsError, match="init.safetensors"):  # the config asks for other channels
        train(data, tmp_path / "wide", tiny_config(model={**TINY["lgbpn-s"], "base_ch": 16}, steps=1), init=init,
              progress=False)
    started = train(data, tmp_path / "ok", tiny_config(steps=1, lr=1e-12, val_every=100), init=init, progress=False)
    assert started["model"].arch_config["base_ch"] == TINY["lgbpn-s"]["base_ch"]
    initial, _ = read_weights(init)
    for name, value in started["model"].state_dict().items():  # it started from the file's weights
        torch.testing.assert_close(value, initial[name], atol=1e-6, rtol=0)


def test_exclude_leaves_cameras_out(shared_data):
    from lgbpn.errors import DataError
    from lgbpn.train.trainer import collect_samples

    every = collect_samples([shared_data / "polyu"])
    kept = collect_samples([shared_data / "polyu"], ["*NikonD800*", "*Sony*"])
    assert any("NikonD800" in s.name for s in every) and any("Sony" in s.name for s in every)
    assert kept and not any("NikonD800" in s.name or "Sony" in s.name for s in kept)
    assert len(kept) < len(every)
    with pytest.raises(DataError, match="exclude"):
        collect_samples([shared_data / "polyu"], ["*"])


def test_convergence_gain_is_read_over_the_last_share_of_the_steps():
    from lgbpn.train.trainer import convergence_gain

    rising = [(250, 30.0), (500, 31.0), (750, 31.5), (1000, 31.8)]
    assert convergence_gain(rising, 0.1, 0.2) is None  # +0.3 since step 750, the last validation <= 800
    flat = rising + [(1250, 31.85), (1500, 31.88)]
    # Last 20% of 1500 steps: from the last validation at or before step 1200 (1000: 31.8).
    assert convergence_gain(flat, 0.1, 0.2) == pytest.approx(0.08)
    assert convergence_gain(flat, 0.05, 0.2) is None
    assert convergence_gain(flat, 0.0, 0.2) is None  # off
    assert convergence_gain(flat[:3], 10.0, 0.2) is None  # too few validations to judge
    # 20% of 1250 steps is one validation interval: a slow interval alone does not stop a run.
    student = [(250, 34.67), (500, 35.41), (750, 36.17), (1000, 36.46), (1250, 36.54)]
    assert convergence_gain(student, 0.1, 0.2) is None
    assert convergence_gain(student, 0.1, 0.4) is None and convergence_gain(student, 0.5, 0.4) == pytest.approx(0.37)


@pytest.mark.slow
def test_a_converged_run_stops_and_says_so(tmp_path, shared_data):
    data = [shared_data / "sidd_samples"]
    # Any gain is below 100 dB: the run stops at the first check with enough history (4 validations,
    # and the last half of the steps spans two of their intervals).
    config = tiny_config(steps=8, val_every=1, converged_gain=100.0, converged_window=0.5)
    summary = train(data, tmp_path / "run", config, progress=False)
    assert summary["step"] == 4 and summary["converged"]["step"] == 4 and summary["stopped_by"] is None
    assert (tmp_path / "run" / "best.safetensors").exists()
    # Resumed, the run's validation history comes from its log: it stops at the next validation.
    part = train(data, tmp_path / "part", tiny_config(steps=8, val_every=1), progress=False, stop_at=3)
    assert part["converged"] is None
    resumed = train(data, tmp_path / "part", config, progress=False, resume=True)
    assert resumed["step"] == 4 and resumed["converged"]["step"] == 4


def test_a_fine_tune_that_does_not_pay_hands_back_its_start(tmp_path, shared_data):
    """The weights a run starts from (--init) are scored before the first step: when no step scores higher (here a
    learning rate too small to move a weight), best.safetensors is the start, recorded as step 0."""
    from lgbpn.weights import read_weights

    from .helpers import tiny_weights

    init = tiny_weights(tmp_path / "init.safetensors")
    data = [shared_data / "sidd_samples"]
    run = tmp_path / "run"
    train(data, run, tiny_config(steps=2, lr=1e-12, val_every=1, ema_decay=0.0), init=init, progress=False)
    log = (run / "log.csv").read_text().splitlines()
    assert log[1].startswith("0,")  # the start's score, the first row
    tensors, meta = read_weights(run / "best.safetensors")
    assert meta["step"] == "0"
    initial, _ = read_weights(init)
    for name, value in initial.items():
        torch.testing.assert_close(tensors[name], value, atol=0, rtol=0)


def test_a_window_cuts_every_training_image_to_its_centre_noisy_and_clean_alike(tmp_path):
    import pickle

    from PIL import Image

    from lgbpn.train.config import ADAPT_RECIPE
    from lgbpn.train.trainer import collect_samples

    rng = np.random.default_rng(0)
    noisy, clean = (rng.integers(0, 256, (100, 60, 3), dtype=np.uint8) for _ in range(2))
    for folder, image in (("noisy", noisy), ("clean", clean)):
        (tmp_path / folder).mkdir()
        Image.fromarray(image).save(tmp_path / folder / "a.png")
    (sample,) = collect_samples([tmp_path], window=40)
    np.testing.assert_array_equal(sample.noisy(), noisy[30:70, 10:50])
    np.testing.assert_array_equal(sample.clean(), clean[30:70, 10:50])
    (whole,) = collect_samples([tmp_path], window=80)  # narrower than the window: whole across
    np.testing.assert_array_equal(whole.noisy(), noisy[10:90])
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(sample)).noisy(), sample.noisy())  # loader workers
    assert make_config(ADAPT_RECIPE).window > 0  # the --adapt route learns from bounded windows of large photos
