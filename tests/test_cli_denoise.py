"""`lgbpn denoise` driven through the real CLI on PNG, 16-bit TIFF, grey JPEG, RGBA PNG and folders."""

import subprocess
import sys

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image as PILImage

from lgbpn.io import read_image

from .helpers import noisy_image, noisy_scene, run_cli

run = run_cli


def test_png_rgb_to_file(tmp_path, weights):
    src = tmp_path / "photo.png"
    PILImage.fromarray(noisy_image(40, 52)).save(src)
    out = tmp_path / "clean.png"
    result = run("denoise", src, "-o", out, "--weights", weights, "--seed", 3)
    assert result.exit_code == 0, result.output
    img = read_image(out)
    assert img.pixels.shape == (40, 52, 3) and img.pixels.dtype == np.uint8
    assert not np.array_equal(img.pixels, noisy_image(40, 52))
    # Same seed, same result; R3 off differs.
    out2 = tmp_path / "again.png"
    run("denoise", src, "-o", out2, "--weights", weights, "--seed", 3)
    assert np.array_equal(read_image(out2).pixels, img.pixels)
    out3 = tmp_path / "nor3.png"
    run("denoise", src, "-o", out3, "--weights", weights, "--no-r3")
    assert not np.array_equal(read_image(out3).pixels, img.pixels)
    out4 = tmp_path / "noblend.png"
    run("denoise", src, "-o", out4, "--weights", weights, "--no-r3", "--no-blend")
    assert not np.array_equal(read_image(out4).pixels, read_image(out3).pixels)


def test_the_students_guard_is_on_by_default_and_can_be_turned_off(tmp_path, monkeypatch):
    import lgbpn.tilewise

    # What the guard gives back is tested in test_wiener.py; here, a stand-in that gives everything back
    # shows whether the command line applies it (tile by tile, as it runs a student).
    monkeypatch.setattr(lgbpn.tilewise, "blend_by_energy", lambda denoised, noisy, energy, noise_var, out=None: noisy)
    src = tmp_path / "photo.png"
    PILImage.fromarray(noisy_scene(8, 48)).save(src)
    outputs = {}
    for flags in ([], ["--guard"], ["--no-guard"]):
        out = tmp_path / f"out{len(outputs)}.png"
        result = run("denoise", src, "-o", out, "--model", "fast", *flags)
        assert result.exit_code == 0, result.output
        outputs[" ".join(flags)] = read_image(out).pixels
    assert np.array_equal(outputs[""], noisy_scene(8, 48)) and np.array_equal(outputs["--guard"], outputs[""])
    assert not np.array_equal(outputs["--no-guard"], noisy_scene(8, 48))


def test_the_coarse_pass_is_off_by_default_and_auto_runs_it_on_heavy_noise(tmp_path):
    src = tmp_path / "photo.png"
    PILImage.fromarray(noisy_scene(14, 96)).save(src)
    outputs = {}
    for flags in ([], ["--coarse", "on"], ["--coarse", "off"], ["--coarse", "auto"]):
        out = tmp_path / f"out{len(outputs)}.png"
        result = run("denoise", src, "-o", out, "--model", "fast", *flags)
        assert result.exit_code == 0, result.output
        outputs[" ".join(flags)] = read_image(out).pixels
    assert np.array_equal(outputs[""], outputs["--coarse off"])
    assert np.array_equal(outputs["--coarse auto"], outputs["--coarse on"])  # heavy noise (sigma 14)
    assert not np.array_equal(outputs["--coarse on"], outputs[""])


def test_ensemble_flag_averages_a_students_flips_and_rotations(tmp_path):
    """--ensemble N reaches the student (the mean of its outputs over N flips and rotations, tiling.py), and only
    the sizes it knows are taken."""
    src = tmp_path / "photo.png"
    PILImage.fromarray(noisy_scene(14, 64)).save(src)
    outputs = {}
    for size in ("1", "8"):
        result = run("denoise", src, "-o", tmp_path / f"out{size}.png", "--model", "fast", "--no-guard", "--ensemble", size)
        assert result.exit_code == 0, result.output
        outputs[size] = read_image(tmp_path / f"out{size}.png").pixels.astype(int)
    assert 0 < np.abs(outputs["8"] - outputs["1"]).mean() < 3  # the same denoising, averaged over 8 views
    refused = run("denoise", src, "-o", tmp_path / "out3.png", "--model", "fast", "--ensemble", "3")
    assert refused.exit_code == 2 and "--ensemble" in refused.output


def test_16bit_tiff_keeps_depth(tmp_path, weights):
    src = tmp_path / "raw16.tif"
    tifffile.imwrite(src, noisy_image(36, 33, dtype=np.uint16))
    out = tmp_path / "out"
    result = run("denoise", src, "-o", out, "--weights", weights, "--no-r3")
    assert result.exit_code == 0, result.output
    img = read_image(out / "raw16.tif")
    assert img.pixels.dtype == np.uint16 and img.pixels.shape == (36, 33, 3)
    assert img.pixels.max() > 255  # really 16-bit, not 8-bit data in a 16-bit file


def test_grey_jpeg_stays_grey(tmp_path, weights):
    src = tmp_path / "grey.jpg"
    PILImage.fromarray(noisy_image(48, 40, channels=1)[..., 0]).save(src, quality=95)
    out = tmp_path / "grey_out.jpg"
    result = run("denoise", src, "-o", out, "--weights", weights, "--no-r3")
    assert result.exit_code == 0, result.output
    with PILImage.open(out) as im:
        assert im.mode == "L" and im.size == (40, 48)


def test_rgba_png_alpha_untouched(tmp_path, weights):
    rgb = noisy_image(30, 30)
    alpha = np.tile(np.arange(30, dtype=np.uint8) * 8, (30, 1))
    src = tmp_path / "rgba.png"
    PILImage.fromarray(np.dstack([rgb, alpha]), "RGBA").save(src)
    out = tmp_path / "rgba_out.png"
    assert run("denoise", src, "-o", out, "--weights", weights, "--no-r3").exit_code == 0
    img = read_image(out)
    assert np.array_equal(img.alpha, alpha)
    assert img.pixels.shape == (30, 30, 3)


def test_folder_keeps_relative_names(tmp_path, weights):
    """(A bad file in a folder and --skip-existing: tests/test_reliability.py.)"""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    PILImage.fromarray(noisy_image(32, 32, seed=1)).save(src / "a.png")
    PILImage.fromarray(noisy_image(32, 32, seed=2)).save(src / "sub" / "b.JPG")
    out = tmp_path / "out"
    result = run("denoise", src, "-o", out, "--weights", weights, "--no-r3")
    assert result.exit_code == 0, result.output
    assert (out / "a.png").exists() and (out / "sub" / "b.JPG").exists() and "2 denoised" in result.output


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (5, 90)])
def test_tiny_images(tmp_path, weights, shape):
    src = tmp_path / "tiny.png"
    PILImage.fromarray(noisy_image(*shape)).save(src)
    out = tmp_path / "tiny_out.png"
    result = run("denoise", src, "-o", out, "--weights", weights)
    assert result.exit_code == 0, result.output
    assert read_image(out).pixels.shape == (*shape, 3)


def test_console_script_entry_point(tmp_path, weights):
    src = tmp_path / "p.png"
    PILImage.fromarray(noisy_image(24, 24)).save(src)
    out = tmp_path / "p_out.png"
    cmd = [sys.executable, "-m", "lgbpn", "denoise", str(src), "-o", str(out), "--weights", str(weights), "--no-r3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.exists()
    bad = subprocess.run([*cmd[:4], str(tmp_path / "missing.png"), "-o", str(out)], capture_output=True, text=True)
    assert bad.returncode == 1 and "missing.png" in bad.stderr and "Traceback" not in bad.stderr


def test_console_script_exits_with_every_output_and_message_written(tmp_path, weights):
    """`python -m lgbpn denoise` leaves without the interpreter's teardown: outputs, the error line of a bad
    file and the closing summary must all be out before it does, and the exit code kept."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        PILImage.fromarray(noisy_image(32, 40, seed=i)).save(photos / f"{i}.png")
    (photos / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "lgbpn", "denoise", str(photos), "-o", str(out), "--weights", str(weights)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr  # some files failed, the others were written
    assert "broken.png" in proc.stderr and "2 denoised" in proc.stderr
    again = run("denoise", photos / "1.png", "-o", tmp_path / "again.png", "--weights", weights)
    assert again.exit_code == 0
    assert np.array_equal(read_image(out / "1.png").pixels, read_image(tmp_path / "again.png").pixels)


def test_models_lists_every_shipped_model_with_its_card_headline():
    from lgbpn.denoiser import DEFAULT_MODEL, pretrained_names

    names = pretrained_names()
    if not names:
        pytest.skip("no shipped weights in this checkout")
    lines = run("models").output.splitlines()
    for name in names:
        line = next(line for line in lines if line.split()[0] == name)
        assert " dB" in line, f"{name}: its card has no headline score"
    assert "(default)" in next(line for line in lines if line.split()[0] == DEFAULT_MODEL)


def test_precision_option(tmp_path, weights):
    src = tmp_path / "p.png"
    PILImage.fromarray(noisy_image(36, 40)).save(src)
    outputs = {}
    for precision in ("auto", "fp32", "bf16"):
        outputs[precision] = tmp_path / f"{precision}.png"
        result = run("denoise", src, "-o", outputs[precision], "--weights", weights, "--no-r3", "--precision", precision)
        assert result.exit_code == 0, result.output
    from lgbpn.precision import resolve_precision

    auto = read_image(outputs["auto"]).pixels
    assert np.array_equal(auto, read_image(outputs[resolve_precision("auto")]).pixels)
    assert np.abs(read_image(outputs["bf16"]).pixels.astype(int) - read_image(outputs["fp32"]).pixels).max() <= 8
    result = run("denoise", src, "-o", tmp_path / "x.png", "--weights", weights, "--precision", "fp16")
    assert result.exit_code == 2 and "--precision" in result.output


@pytest.mark.parametrize("option, value", [("--seed", "-1"), ("--device", "gpu0"), ("--overlap", "-3"), ("--strength", "3")])
@pytest.mark.parametrize("command", ["denoise", "eval", "submit"])
def test_bad_model_option_exits_2_naming_it(tmp_path, weights, command, option, value):
    args = {"denoise": ["denoise", tmp_path / "a.png", "-o", tmp_path / "b.png"],
            "eval": ["eval", "--data", tmp_path], "submit": ["submit", "sidd", "--data", tmp_path, "-o", tmp_path / "b"]}
    result = run(*args[command], "--weights", weights, option, value)
    assert result.exit_code == 2 and option in result.output, result.output


def test_tile_help_shows_the_real_default_and_the_lgbpn_caveat():
    from lgbpn.options import DEFAULT_TILE

    help_text = " ".join(run("denoise", "--help").output.split())
    assert f"default {DEFAULT_TILE}" in help_text and "output depends on the tile size" in help_text
    assert "default 512" not in help_text


def test_eval_records_the_inference_options(tmp_path, weights):
    for folder in ("noisy", "clean"):
        (tmp_path / "set" / folder).mkdir(parents=True)
        PILImage.fromarray(noisy_image(30, 30, seed=folder == "noisy")).save(tmp_path / "set" / folder / "a.png")
    report = tmp_path / "scores.json"
    result = run("eval", "--data", tmp_path / "set", "--weights", weights, "--no-r3", "--tile", 96, "--json", report)
    assert result.exit_code == 0, result.output
    import json

    info = json.loads(report.read_text())
    assert info["weights"] == str(weights) and info["model"] == "lgbpn-s"
    assert (info["r3"], info["tile"], info["overlap"], info["precision"], info["blend"]) == (False, 96, 48, "auto", True)


def test_adapt_with_the_default_student_fine_tunes_it_on_the_photos_and_saves_it_beside_the_outputs(tmp_path):
    from lgbpn.denoiser import pretrained_path
    from lgbpn.weights import load_model

    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    for i in range(2):
        PILImage.fromarray(noisy_image(256, 128, seed=i)).save(photos / f"{i}.png")
    PILImage.fromarray(noisy_image(24, 64, seed=2)).save(photos / "small.png")
    result = run("denoise", photos, "-o", out, "--adapt", 1)
    assert result.exit_code == 0, result.output
    weights = out / "lgbpn-adapted.safetensors"
    assert f"{photos / 'small.png'}: 24 pixels on a side, too small to adapt to" in result.stderr
    assert "adapting to 2 photos: the student lgbpn-fast, 1 steps on their recorrupted pairs" in result.stderr
    assert f"reuse it with --weights {weights}" in result.stderr
    assert result.stderr.count("lgbpn-fast kept on") == 3  # each image says how much of the shipped output it kept
    assert sorted(p.name for p in out.glob("*.png")) == ["0.png", "1.png", "small.png"]
    adapted, shipped = load_model(weights), load_model(pretrained_path("lgbpn-fast"))
    assert adapted.base == "lgbpn-fast" and adapted.teacher == shipped.teacher  # its heavy-noise fallback stays
    assert any(not torch.equal(a, b) for a, b in zip(adapted.state_dict().values(), shipped.state_dict().values()))
    refused = run("denoise", photos, "-o", out, "--adapt", 1)
    assert refused.exit_code == 1 and f"reuse it with --weights {weights}" in refused.stderr, refused.output


@pytest.mark.slow
def test_adapt_through_the_teacher_runs_the_whole_route_and_saves_the_weights_beside_the_outputs(tmp_path):
    from lgbpn.weights import load_model

    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    for i in range(2):
        PILImage.fromarray(noisy_image(256, 128, seed=i)).save(photos / f"{i}.png")
    result = run("denoise", photos, "-o", out, "--adapt", 1, "--adapt-route", "teacher")
    assert result.exit_code == 0, result.output
    weights = out / "lgbpn-adapted.safetensors"
    assert "adapting to 2 photos: the teacher lgbpn-s (1 steps), then the student lgbpn-fast (2 steps)" in result.stderr
    assert f"reuse it with --weights {weights}" in result.stderr
    assert "chosen by the self-supervised score on 2 held-out noisy crops" in result.stderr
    assert result.stderr.count("lgbpn-fast kept on") == 2  # each image says how much of the shipped output it kept
    adapted = load_model(weights)
    assert adapted.base == "lgbpn-fast" and adapted.teacher == str(out / "lgbpn-adapt" / "teacher.safetensors")
    assert sorted(p.name for p in out.glob("*.png")) == ["0.png", "1.png"]
    # Reused as it says; adapting into the same folder again is refused, naming what to do instead.
    again = run("denoise", photos / "0.png", "-o", tmp_path / "again.png", "--weights", weights, "--no-keep-base")
    assert again.exit_code == 0, again.output
    assert np.array_equal(read_image(tmp_path / "again.png").pixels.shape, (256, 128, 3))
    twice = run("denoise", photos, "-o", out, "--adapt", 1, "--adapt-route", "teacher", "--skip-existing")
    assert twice.exit_code == 0 and "0 denoised, 2 skipped" in twice.stderr, twice.output  # nothing to adapt to
    refused = run("denoise", photos, "-o", out, "--adapt", 1, "--adapt-route", "teacher")
    assert refused.exit_code == 1 and f"--weights {weights}" in refused.stderr, refused.output


def test_first_photo_decodes_before_torch_loads(tmp_path, weights):
    """The first photo's decode overlaps torch's import (most of a photo's start-up): nothing on the way to it,
    the options' checks included, imports torch."""
    src = tmp_path / "photo.png"
    PILImage.fromarray(noisy_image(40, 52)).save(src)
    script = ("import sys\nimport lgbpn.batch as batch\nread = batch._read\n"
              "def first(job):\n    print('torch' in sys.modules, flush=True)\n    return read(job)\n"
              "batch._read = first\nfrom lgbpn.cli import main\nmain(sys.argv[1:], standalone_mode=False)")
    seen = subprocess.run([sys.executable, "-c", script, "denoise", str(src), "-o", str(tmp_path / "out.png"),
                           "--weights", str(weights), "--no-r3"], capture_output=True, text=True, check=True).stdout
    assert seen.split() == ["False"] and (tmp_path / "out.png").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc, read in /proc")
@pytest.mark.parametrize("keep", [False, True])
def test_denoise_process_keeps_freed_memory(keep):
    """`lgbpn denoise` in a process of its own keeps what its tiles free for the next ones (no page faults again)."""
    script = ("import sys\nimport numpy as np\nfrom lgbpn.cli import _keep_freed_memory\n"
              "rss = lambda: int(open('/proc/self/statm').read().split()[1]) * 4096\n"
              "if sys.argv[1] == 'True':\n    _keep_freed_memory()\n"
              "block = np.ones(200_000_000, np.uint8)\nbefore = rss()\ndel block\nprint(before - rss())")
    returned = int(subprocess.run([sys.executable, "-c", script, str(keep)], capture_output=True, text=True,
                                  check=True).stdout)
    assert (returned < 20_000_000) if keep else (returned > 180_000_000)


def test_denoise_loads_only_what_it_needs(tmp_path, weights):
    """Start-up is part of every photo's time: `lgbpn denoise` must not import what only other commands,
    or other formats, need (the TIFF codec, plotting, training, benchmarks, OpenCV ...)."""
    src = tmp_path / "photo.png"
    PILImage.fromarray(noisy_image(40, 52)).save(src)
    script = ("import sys\nfrom lgbpn.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit as exc:\n"
              "    assert exc.code == 0, exc.code\nprint(' '.join(sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", script, "denoise", str(src), "-o", str(tmp_path / "out.png"),
                             "--weights", str(weights), "--no-r3"], capture_output=True, text=True, check=True).stdout.split()
    assert "torch" in loaded and "lgbpn.denoiser" in loaded  # the check sees what the command imported
    heavy = ("tifffile", "scipy", "skimage", "matplotlib", "h5py", "pydantic", "yaml", "cv2", "lgbpn.bench.harness",
             "lgbpn.bench.compare", "lgbpn.train.trainer", "lgbpn.data.formats", "lgbpn.metrics", "lgbpn.adapt")
    assert [name for name in heavy if name in loaded] == []
