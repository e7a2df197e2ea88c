"""Issue 6: bad input gets a one-line error and loses nothing; untrusted weights cannot run code.

Everything is driven through the real CLI (click's CliRunner, and `python -m lgbpn` subprocesses
where a traceback on stderr or a real kill signal matters). Models and images are tiny.
"""

import csv
import os
import pickle
import random
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image as PILImage

from lgbpn.errors import ConfigError, WeightsError
from lgbpn.io import Image, find_images, read_image, write_image
from lgbpn.train import trainer
from lgbpn.train.config import make_config
from lgbpn.weights import load_model, read_weights

from .conftest import ROOT
from .helpers import TINY, assert_cli_error, noisy_image, png, png_chunk, run_cli, tiny_model, tiny_weights

PYTHON_ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def train_data(tmp_path):
    """A training folder with one small noisy image."""
    data = tmp_path / "data"
    data.mkdir()
    png(data / "a.png", noisy_image(48, 48))
    return data


def truncated(path, make):
    make(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def huge_header_png(path):
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IEND", b""))


def float_tiff(value):
    def make(path):
        arr = noisy_image(8, 8, dtype=np.float32)
        arr[3, 4, 1] = value
        tifffile.imwrite(path, arr, photometric="rgb")
    return make


def gif(path):
    PILImage.fromarray(noisy_image(8, 8)).save(path)


# ------------------------------------------------------------------- unreadable single files

BAD_FILES = {
    "empty.png": lambda p: p.write_bytes(b""),
    "truncated.png": lambda p: truncated(p, lambda q: png(q, noisy_image(64, 64))),
    "truncated.jpg": lambda p: truncated(p, lambda q: png(q, noisy_image(64, 64), quality=95)),
    "truncated.tif": lambda p: truncated(p, lambda q: tifffile.imwrite(q, noisy_image(64, 64))),
    "text.png": lambda p: p.write_text("I am a text file, not a PNG\n"),
    "anim.gif": gif,
    "notes.txt": lambda p: p.write_text("plain text"),
    "header_30000x30000.png": huge_header_png,
    "nan.tif": float_tiff(np.nan),
    "inf.tif": float_tiff(np.inf),
    "negative_int16.tif": lambda p: tifffile.imwrite(p, -np.ones((6, 6), np.int16)),
    "folder.png": lambda p: p.mkdir(),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_single_file_one_line_error(tmp_path, weights, name):
    src = tmp_path / name
    BAD_FILES[name](src)
    out = tmp_path / "out" / "result.png"
    result = run_cli("denoise", src, "-o", out, "--weights", weights, "--no-r3")
    assert_cli_error(result, src)
    assert not out.exists()
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")  # no temporary left behind


def test_bad_files_in_a_folder_are_reported_skipped_and_counted(tmp_path, weights):
    src = tmp_path / "in"
    src.mkdir()
    good = [png(src / "good1.png", noisy_image(40, 40, seed=1)), png(src / "good2.jpg", noisy_image(36, 44, seed=2))]
    bad = ["empty.png", "truncated.jpg", "truncated.tif", "text.png", "nan.tif"]
    for name in bad:
        BAD_FILES[name](src / name)
    out = tmp_path / "out"
    result = run_cli("denoise", src, "-o", out, "--weights", weights, "--no-r3")
    assert result.exit_code == 3, result.output  # some files failed
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(bad)
    for name in bad:
        assert sum(str(src / name) in line for line in errors) == 1, name
    assert result.stderr.strip().splitlines()[-1] == f"2 denoised, 0 skipped (output exists), {len(bad)} failed"
    assert sorted(p.name for p in out.iterdir()) == ["good1.png", "good2.jpg"]
    for path in good:
        assert read_image(out / path.name).pixels.shape == read_image(path).pixels.shape

    # Adapting to the inputs first skips the unreadable ones too (they are still reported once).
    result = run_cli("denoise", src, "-o", tmp_path / "adapted", "--weights", weights, "--no-r3", "--adapt", 1)
    assert result.exit_code == 3 and "2 denoised" in result.stderr, result.output
    # The default model, a distilled student, fine-tunes itself on the readable ones.
    result = run_cli("denoise", src, "-o", tmp_path / "adapted2", "--no-r3", "--adapt", 1)
    assert result.exit_code == 3 and "2 denoised" in result.stderr and "adapting to 2 photos" in result.stderr, result.output

    # Nothing readable at all: exit code 1.
    only_bad = tmp_path / "only_bad"
    only_bad.mkdir()
    BAD_FILES["empty.png"](only_bad / "a.png")
    BAD_FILES["text.png"](only_bad / "b.png")
    result = run_cli("denoise", only_bad, "-o", tmp_path / "out2", "--weights", weights)
    assert result.exit_code == 1 and "0 denoised, 0 skipped (output exists), 2 failed" in result.stderr


# ---------------------------------------------------------------- odd but valid images

@pytest.mark.parametrize("shape, options", [  # plain tiny images: test_cli_denoise.py::test_tiny_images
    ((2, 2), ["--tile", 1, "--overlap", 100]),  # smaller than the PD stride, the tile and the overlap
    ((13, 5), ["--tile", 4, "--overlap", 0]),  # tile below the PD alignment (12)
])
def test_tiny_images_and_tiles(tmp_path, weights, shape, options):
    src = png(tmp_path / "tiny.png", noisy_image(*shape))
    out = tmp_path / "tiny_out.png"
    result = run_cli("denoise", src, "-o", out, "--weights", weights, *options)
    assert result.exit_code == 0, result.output
    assert read_image(out).pixels.shape == (*shape, 3)


@pytest.mark.parametrize("shape", [(20000, 8), (8, 20000)])
def test_one_huge_side(tmp_path, apbsn_weights, shape):
    src = png(tmp_path / "long.png", noisy_image(*shape))
    out = tmp_path / "long_out.png"
    result = run_cli("denoise", src, "-o", out, "--weights", apbsn_weights, "--no-r3")
    assert result.exit_code == 0, result.output
    pixels = read_image(out).pixels
    assert pixels.shape == (*shape, 3) and pixels.std() > 0


def exif_rotated_jpeg(path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = 255  # left half white: upright (turned 90 degrees clockwise), the top half is white
    exif = PILImage.Exif()
    exif[0x0112] = 6
    exif[0x0131] = "camera-software"
    PILImage.fromarray(arr).save(path, exif=exif, quality=95)


def test_formats_depth_channels_and_orientation_are_kept(tmp_path, weights):
    src = tmp_path / "in"
    src.mkdir()
    rgb16 = noisy_image(20, 22, dtype=np.uint16)
    write_image(src / "rgb16.png", Image(rgb16, None, None, ""))
    f32 = noisy_image(18, 16, dtype=np.float32)
    tifffile.imwrite(src / "float32.tif", f32, photometric="rgb")
    grey16 = noisy_image(17, 19, channels=1, dtype=np.uint16)[..., 0]
    tifffile.imwrite(src / "grey16.tif", grey16)
    PILImage.fromarray(noisy_image(16, 18)).quantize(16).save(src / "palette.png")
    PILImage.fromarray(noisy_image(24, 24)).convert("CMYK").save(src / "cmyk.jpg", quality=95)
    alpha_ramp = np.tile(np.arange(14, dtype=np.uint8) * 18, (15, 1))
    grey_alpha = np.dstack([noisy_image(15, 14, channels=1)[..., 0], alpha_ramp])
    PILImage.fromarray(grey_alpha, "LA").save(src / "grey_alpha.png")
    rgba16 = np.dstack([noisy_image(12, 13, dtype=np.uint16), np.full((12, 13), 40000, np.uint16)])
    tifffile.imwrite(src / "rgba16.tif", rgba16, photometric="rgb", extrasamples=["unassalpha"])
    exif_rotated_jpeg(src / "rotated.jpg")
    png(src / "jpeg_named.png", noisy_image(16, 16), format="JPEG")  # the content decides, not the suffix

    out = tmp_path / "out"
    result = run_cli("denoise", src, "-o", out, "--weights", weights, "--no-r3")
    assert result.exit_code == 0, result.output
    assert "9 denoised, 0 skipped (output exists), 0 failed" in result.stderr

    image = read_image(out / "rgb16.png")
    assert image.pixels.dtype == np.uint16 and image.pixels.shape == (20, 22, 3) and image.pixels.max() > 255
    image = read_image(out / "float32.tif")
    assert image.pixels.dtype == np.float32 and image.pixels.shape == (18, 16, 3)
    assert np.isfinite(image.pixels).all()
    image = read_image(out / "grey16.tif")
    assert image.pixels.dtype == np.uint16 and image.pixels.shape == (17, 19, 1)
    image = read_image(out / "palette.png")  # palette images come out as RGB (documented in lgbpn.io)
    assert image.pixels.shape == (16, 18, 3) and image.pixels.dtype == np.uint8
    with PILImage.open(out / "cmyk.jpg") as im:
        assert im.mode == "RGB" and im.size == (24, 24)
    image = read_image(out / "grey_alpha.png")
    assert image.pixels.shape == (15, 14, 1) and np.array_equal(image.alpha, grey_alpha[..., 1])
    image = read_image(out / "rgba16.tif")
    assert image.pixels.dtype == np.uint16 and np.array_equal(image.alpha, rgba16[..., 3])
    # EXIF orientation: applied (the output is upright), reset to 1, other EXIF kept.
    image = read_image(out / "rotated.jpg")
    assert image.pixels.shape == (40, 20, 3)
    with PILImage.open(out / "rotated.jpg") as im:
        exif = im.getexif()
        assert exif.get(0x0112, 1) == 1 and exif[0x0131] == "camera-software"
    assert read_image(out / "jpeg_named.png").format == "PNG"


# ------------------------------------------------------------------------------ output paths

def test_missing_output_folders_are_created(tmp_path, weights):
    src = png(tmp_path / "a.png", noisy_image(16, 16))
    result = run_cli("denoise", src, "-o", tmp_path / "new" / "deeper" / "a_out.png", "--weights", weights, "--no-r3")
    assert result.exit_code == 0 and (tmp_path / "new" / "deeper" / "a_out.png").exists()
    result = run_cli("denoise", src, "-o", f"{tmp_path / 'newdir'}/", "--weights", weights, "--no-r3")
    assert result.exit_code == 0 and read_image(tmp_path / "newdir" / "a.png").pixels.shape == (16, 16, 3)


def test_unwritable_output_one_line_error(tmp_path, weights):
    src = png(tmp_path / "a.png", noisy_image(16, 16))
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file where a folder should be")
    for out in (blocker / "a_out.png", blocker / "sub" / "a_out.png"):
        result = run_cli("denoise", src, "-o", out, "--weights", weights, "--no-r3")
        line = assert_cli_error(result, out)
        assert f"{blocker} is a file, not a folder" in line
    out = tmp_path / "a_out.bmp"  # BMP is read, not written
    assert ".bmp" in assert_cli_error(run_cli("denoise", src, "-o", out, "--weights", weights, "--no-r3"), out)
    assert sorted(os.listdir(tmp_path)) == ["a.png", "blocker"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_output_folder(tmp_path, weights):
    src = png(tmp_path / "a.png", noisy_image(16, 16))
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        result = run_cli("denoise", src, "-o", folder / "a_out.png", "--weights", weights, "--no-r3")
        assert "ermission denied" in assert_cli_error(result, folder / "a_out.png")
    finally:
        folder.chmod(0o700)


def test_output_equal_to_an_input_is_refused(tmp_path, weights):
    src = tmp_path / "in"
    src.mkdir()
    a = png(src / "a.png", noisy_image(16, 16))
    before = a.read_bytes()
    for args in ([a, "-o", src / ".." / "in" / "a.png"], [src, "-o", src], [a, src / "b.png", "-o", src]):
        if len(args) == 4:
            png(src / "b.png", noisy_image(8, 8))
        result = run_cli("denoise", *args, "--weights", weights)
        assert "would overwrite an input" in assert_cli_error(result, "a.png")
    assert a.read_bytes() == before


# ------------------------------------------------------------------------------------ options

@pytest.mark.parametrize("command, option, value", [  # --overlap, --seed, --device: test_cli_denoise.py
    ("denoise", "--tile", "0"), ("denoise", "--tile", "-5"),
    ("denoise", "--adapt", "-1"), ("train", "--steps", "0"), ("train", "--crop", "-1"), ("train", "--batch", "0"),
    ("train", "--lr", "0"), ("train", "--val-every", "-2"), ("eval", "--limit", "0"), ("denoise", "--tile", "ten"),
    ("distill", "--adapt", "-1"),
])
def test_bad_option_values_exit_2_naming_the_option(tmp_path, command, option, value):
    args = {"denoise": [tmp_path / "a.png", "-o", tmp_path / "b.png"],
            "train": ["--data", tmp_path, "--out", tmp_path / "run"],
            "distill": ["--data", tmp_path, "--out", tmp_path / "run"],
            "eval": ["--data", tmp_path]}[command]
    result = run_cli(command, *args, option, value)
    assert result.exit_code == 2, result.output
    assert option in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "b.png").exists()


MODEL = "model: {base_ch: 8, head_ch: 4, local_blocks: 1, global_blocks: 1}\narch: lgbpn-s\n"


@pytest.mark.parametrize("text, named", [
    # A misspelt key and `steps: ten`: test_train.py::test_config_file_errors_name_the_key.
    ("lr: fast\n", "lr"),  # wrong type
    ("val_r3: 3\n", "val_r3"),
    ("betas: 0.9\n", "betas"),
    ("workers: -1\n", "workers"),
    ("model: 5\n", "model"),
    ("arch: lgbpn-s\nmodel: {base_chan: 8}\n", "base_chan"),  # unknown architecture setting
    ("arch: lgbpn-s\nmodel: {base_ch: -8}\n", "negative"),
    ("preset: mars\n", "mars"),
    ("steps: [1,\n", "cannot read config"),  # not YAML
    ("- a list\n", "mapping"),
])
def test_bad_config_file_names_the_key(tmp_path, train_data, text, named):
    config = tmp_path / "config.yaml"
    config.write_text(text)
    result = run_cli("train", "--data", train_data, "--out", tmp_path / "run", "--config", config, "--steps", 1)
    assert named in assert_cli_error(result, "", code=1)
    assert not (tmp_path / "run" / "last.pt").exists()


def test_config_numbers_in_yaml_exponent_form():
    """YAML 1.1 reads `1e-3` as a string; it is still a valid learning rate."""
    config = make_config(None, lr="1e-3")
    assert config.lr == 1e-3
    with pytest.raises(ConfigError, match="lr"):
        make_config(None, lr="fast")


def test_train_on_the_noisy_half_of_a_paired_set(tmp_path):
    """`--data DATA/noisy`, DATA holding noisy/ and clean/, trains and validates on the clean partners."""
    data = tmp_path / "DATA"
    for seed, kind in enumerate(("noisy", "clean")):
        (data / kind).mkdir(parents=True)
        png(data / kind / "a.png", noisy_image(48, 48, seed=seed))
    config = tmp_path / "config.yaml"
    config.write_text(MODEL + "crop: 40\nbatch: 1\nval_every: 1\nval_images: 1\nval_crop: 32\n")
    run_dir = tmp_path / "run"
    result = run_cli("train", "--data", data / "noisy", "--out", run_dir, "--config", config, "--steps", 1)
    assert result.exit_code == 0, result.output
    with open(run_dir / "log.csv") as fh:
        (row,) = csv.DictReader(fh)
    assert float(row["val_psnr"]) > 0  # scored against clean/a.png


# ------------------------------------------------------------------------------------ weights

def reference_apbsn_checkpoint(path):
    """Our tiny AP-BSN as the reference trainer saves it (a pickle of plain tensors)."""
    state = {k.replace("bsn.branch1.", "bsn.branch1.body.").replace("bsn.branch2.", "bsn.branch2.body."): v
             for k, v in tiny_model("apbsn").state_dict().items()}
    torch.save({"epoch": 3, "model_weight": {"denoiser": state}}, path)
    return path


def wrong_channels_in_metadata(path):
    """Metadata claims a grey network; the tensors are for RGB."""
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in tiny_model().state_dict().items()}
    save_file(state, path, metadata={"arch": "lgbpn-s", "config": '{"in_ch": 1, "base_ch": 8, "head_ch": 4, '
                                                                  '"local_blocks": 1, "global_blocks": 1}'})


def damaged_metadata(path):
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in tiny_model().state_dict().items()}, path,
              metadata={"arch": "lgbpn-s", "config": "{not json"})


def truncated_copy(path, weights):
    path.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


BAD_WEIGHTS = {
    "truncated.safetensors": (lambda p, w: truncated_copy(p, w), "not a valid safetensors"),
    "header_only.safetensors": (lambda p, w: p.write_bytes(w.read_bytes()[:6]), "not a valid safetensors"),
    "text.safetensors": (lambda p, w: p.write_text("hello"), "not a valid safetensors"),
    "truncated.pth": (lambda p, w: truncated(p, reference_apbsn_checkpoint), "cannot read checkpoint"),
    "empty.pth": (lambda p, w: p.write_bytes(b""), "empty"),
    "our_names.pth": (lambda p, w: torch.save(tiny_model().state_dict(), p), "unrecognised weights"),
    "wrong_channels.safetensors": (lambda p, w: wrong_channels_in_metadata(p), "do not fit"),
    "damaged_metadata.safetensors": (lambda p, w: damaged_metadata(p), "damaged metadata"),
    "missing.safetensors": (lambda p, w: None, "not found"),
}


@pytest.mark.parametrize("name", sorted(BAD_WEIGHTS))
def test_bad_weights_files(tmp_path, weights, name):
    make, expected = BAD_WEIGHTS[name]
    path = tmp_path / name
    make(path, weights)
    src = png(tmp_path / "a.png", noisy_image(16, 16))
    result = run_cli("denoise", src, "-o", tmp_path / "out.png", "--weights", path)
    assert expected in assert_cli_error(result, path)
    assert not (tmp_path / "out.png").exists()


def test_weights_for_the_wrong_architecture_or_channels(tmp_path, weights, apbsn_weights):
    src = png(tmp_path / "a.png", noisy_image(16, 16))
    out = tmp_path / "out.png"
    result = run_cli("denoise", src, "-o", out, "--weights", weights, "--arch", "apbsn")
    assert "weights are for --arch lgbpn-s, not apbsn" in assert_cli_error(result, weights)
    result = run_cli("denoise", src, "-o", out, "--weights", apbsn_weights, "--arch", "lgbpn")
    assert "weights are for --arch apbsn" in assert_cli_error(result, apbsn_weights)
    grey = tiny_weights(tmp_path / "grey.safetensors", in_ch=1)
    result = run_cli("denoise", src, "-o", out, "--weights", grey)  # a grey network cannot take an RGB image
    assert "1 channels" in assert_cli_error(result, src)
    assert not out.exists()
    # A genuine reference checkpoint (pickle of plain tensors) does load, through weights_only=True.
    model = load_model(reference_apbsn_checkpoint(tmp_path / "ref.pth"))
    for a, b in zip(model.state_dict().values(), tiny_model("apbsn").state_dict().values()):
        assert torch.equal(a, b)


class _RunsCode:
    """Unpickling this would run a shell command that creates the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _WritesFile:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


@pytest.mark.parametrize("how", ["torch.save", "pickle.dump", "exec"])
def test_crafted_pickle_cannot_run_code(tmp_path, how):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pth"
    if how == "torch.save":
        torch.save({"state_dict": {"x": torch.zeros(1)}, "payload": _RunsCode(marker)}, path)
    elif how == "pickle.dump":
        path.write_bytes(pickle.dumps({"model_weight": _RunsCode(marker)}, protocol=2))
    else:
        torch.save(_WritesFile(marker), path)
    with pytest.raises(WeightsError) as excinfo:
        read_weights(path)
    message = str(excinfo.value)
    assert message.startswith(f"{path}: refused") and "\n" not in message
    assert "weights_only` set to `False" not in message  # never advise switching the check off
    assert not marker.exists()
    src = png(tmp_path / "a.png", noisy_image(8, 8))
    result = run_cli("denoise", src, "-o", tmp_path / "out.png", "--weights", path)
    assert "refused" in assert_cli_error(result, path)
    assert not marker.exists()


# ----------------------------------------------------------------- subprocess: no tracebacks

def lgbpn_process(*args, **kw):
    return subprocess.run([sys.executable, "-m", "lgbpn", *map(str, args)], capture_output=True, text=True,
                          env=PYTHON_ENV, timeout=120, **kw)


@pytest.mark.slow
def test_subprocess_errors_have_no_traceback(tmp_path, weights):
    src = png(tmp_path / "a.png", noisy_image(16, 16))
    proc = lgbpn_process("denoise", src, "-o", tmp_path / "o.png", "--tile", "-5")
    assert proc.returncode == 2 and "--tile" in proc.stderr and "Traceback" not in proc.stderr
    bad = tmp_path / "cut.jpg"
    BAD_FILES["truncated.jpg"](bad)
    evil = tmp_path / "evil.pth"
    torch.save(_RunsCode(tmp_path / "PWNED"), evil)
    # One process (one torch import) tries the bad image, then the bad weights.
    script = textwrap.dedent(f"""
        import sys
        from lgbpn.cli import main
        for args in (["denoise", {str(bad)!r}, "-o", {str(tmp_path / "o.png")!r}, "--weights", {str(weights)!r}],
                     ["denoise", {str(src)!r}, "-o", {str(tmp_path / "o.png")!r}, "--weights", {str(evil)!r}]):
            try:
                main(args)
            except SystemExit as exc:
                print("exit", exc.code, file=sys.stderr)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=PYTHON_ENV, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and len(lines) == 4, proc.stderr
    assert lines[0].startswith(f"error: {bad}: corrupt or truncated JPEG") and lines[1] == "exit 1"
    assert lines[2].startswith(f"error: {evil}: refused") and lines[3] == "exit 1"
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "o.png").exists()


# ---------------------------------------------------------------------------- nothing lost

WRITER = """
import os
import sys
import time

import numpy as np

from lgbpn.io import Image, atomic_write_bytes, write_image

target, blob, pause_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
images = [np.random.default_rng(seed).integers(0, 256, (700, 700, 3), dtype=np.uint8) for seed in (0, 1)]
real_replace, replaces = os.replace, 0


def replace_after_a_pause(src, dst):
    # An atomic write renames its finished temporary file onto the target: holding still just
    # before the rename lets the test kill at a known point of a write.
    global replaces
    replaces += 1
    if replaces == pause_at:
        print("paused", flush=True)
        time.sleep(600)
    real_replace(src, dst)


os.replace = replace_after_a_pause
for i in range(1000):
    print("start", i, flush=True)
    write_image(target, Image(images[i % 2], None, None, ""))
    atomic_write_bytes(blob, bytes([i % 2]) * 3_000_000)
"""


@pytest.mark.slow
def test_killed_writer_never_leaves_a_partial_file(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    out = tmp_path / "out"
    out.mkdir()
    target, blob = out / "image.png", out / "weights.bin"
    images = [np.random.default_rng(seed).integers(0, 256, (700, 700, 3), dtype=np.uint8) for seed in (0, 1)]
    blobs = [bytes([i]) * 3_000_000 for i in (0, 1)]

    def hidden():
        return {p.name for p in out.iterdir() if p.name.startswith(".")}

    def kill_writer(pause_at=0, start=0, delay=0.0):
        """Start the writer and SIGKILL it: paused before its `pause_at`-th rename, or `delay` s after
        it starts write round `start`. Returns the hidden files the kill left behind."""
        before = hidden()
        proc = subprocess.Popen([sys.executable, str(script), str(target), str(blob), str(pause_at)],
                                stdout=subprocess.PIPE, text=True, env=PYTHON_ENV)
        watchdog = threading.Timer(120, proc.kill)  # a writer that never gets there ends the loop below
        watchdog.start()
        wanted = "paused" if pause_at else f"start {start}"
        reached = any(line.strip() == wanted for line in proc.stdout)
        time.sleep(delay)
        proc.kill()
        proc.wait()
        watchdog.cancel()
        proc.stdout.close()
        assert reached, f"the writer never printed {wanted!r}"
        visible = {p.name for p in out.iterdir()} - hidden()
        assert visible <= {"image.png", "weights.bin"}
        assert find_images([out]) == ([(target, target.relative_to(out))] if target.exists() else [])
        return hidden() - before

    # Killed just before renames 1 (the first image), 3 (the second image) and 4 (the second blob):
    # the target keeps its previous complete content; the finished new one stays a hidden .tmp.
    (left,) = kill_writer(pause_at=1)
    assert not target.exists() and not blob.exists()
    assert left.endswith(".tmp") and np.array_equal(read_image(out / left).pixels, images[0])
    (left,) = kill_writer(pause_at=3)
    assert np.array_equal(read_image(target).pixels, images[0]) and blob.read_bytes() == blobs[0]
    assert np.array_equal(read_image(out / left).pixels, images[1])
    (left,) = kill_writer(pause_at=4)
    assert np.array_equal(read_image(target).pixels, images[1]) and blob.read_bytes() == blobs[0]
    assert (out / left).read_bytes() == blobs[1]

    # Killed anywhere (mid-encode, mid-write, mid-rename): whatever is visible is complete.
    rng = random.Random(6)
    for _ in range(3):
        kill_writer(start=rng.randint(0, 3), delay=rng.uniform(0, 0.15))
        assert any(np.array_equal(read_image(target).pixels, image) for image in images)
        assert blob.read_bytes() in blobs
    assert all(name.endswith(".tmp") for name in hidden())


# 1,000,000 steps are never reached: the SIGTERM lands mid-run however fast the machine is.
TRAIN_CONFIG = MODEL + "steps: 1000000\ncrop: 40\nbatch: 1\nlr: 0.001\ncheckpoint_every: 1000\nlog_every: 1\n"


@pytest.mark.slow
def test_sigterm_saves_a_resumable_checkpoint(tmp_path, train_data):
    config = tmp_path / "config.yaml"
    config.write_text(TRAIN_CONFIG)
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "lgbpn", "train", "--data", train_data, "--out", run_dir, "--config", config,
           "--threads", 1]
    proc = subprocess.Popen(list(map(str, cmd)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=PYTHON_ENV)
    log = run_dir / "log.csv"
    deadline = time.monotonic() + 120
    while not (log.exists() and len(log.read_text().splitlines()) >= 3) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # after step 2 was logged, so the signal handler is in place
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    message = stderr.strip().splitlines()[-1]
    assert message.startswith("stopped by SIGTERM at step ") and message.endswith("resume with --resume")
    stopped = int(message.split("at step ")[1].split(";")[0])
    assert stopped >= 2
    state = torch.load(run_dir / "last.pt", weights_only=True)
    assert state["step"] == stopped
    assert load_model(run_dir / "last.safetensors").arch_name == "lgbpn-s"

    # --resume continues from there to the end (the end moved close so the test stays short).
    result = run_cli("train", "--data", train_data, "--out", run_dir, "--resume", "--steps", stopped + 3)
    assert result.exit_code == 0, result.output
    assert f"done: step {stopped + 3}" in result.stdout
    steps = [int(line.split(",")[0]) for line in log.read_text().splitlines()[1:]]
    assert steps == list(range(1, stopped + 4))  # no gap, no step logged twice
    assert torch.load(run_dir / "last.pt", weights_only=True)["step"] == stopped + 3


def tiny_train_config(**kw):
    return make_config(**{**dict(arch="lgbpn-s", model=TINY["lgbpn-s"], steps=4, crop=40, batch=1, lr=1e-3,
                                 checkpoint_every=1, log_every=1), **kw})


def test_sigint_in_process_stops_cleanly_and_resume_is_exact(tmp_path, train_data, monkeypatch):
    full = trainer.train([train_data], tmp_path / "full", tiny_train_config(), progress=False)

    real_loss, calls = trainer.self_supervised_loss, []

    def interrupted_at_step_2(model, noisy):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of step 2
        return real_loss(model, noisy)

    monkeypatch.setattr(trainer, "self_supervised_loss", interrupted_at_step_2)
    part = trainer.train([train_data], tmp_path / "part", tiny_train_config(), progress=False)
    assert part["stopped_by"] == "SIGINT" and part["step"] == 2
    assert torch.load(tmp_path / "part" / "last.pt", weights_only=True)["step"] == 2
    monkeypatch.setattr(trainer, "self_supervised_loss", real_loss)
    resumed = trainer.train([train_data], tmp_path / "part", tiny_train_config(), progress=False, resume=True)
    assert resumed["step"] == 4 and resumed["stopped_by"] is None
    for (name, a), b in zip(full["model"].state_dict().items(), resumed["model"].state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, train_data, monkeypatch, bad):
    real_loss, calls = trainer.self_supervised_loss, []

    def diverges_at_step_3(model, noisy):
        calls.append(1)
        loss = real_loss(model, noisy)
        return loss * bad if len(calls) == 3 else loss

    monkeypatch.setattr(trainer, "self_supervised_loss", diverges_at_step_3)
    run_dir = tmp_path / "run"
    with pytest.raises(trainer.TrainingDiverged) as excinfo:
        trainer.train([train_data], run_dir, tiny_train_config(steps=10), progress=False)
    message = str(excinfo.value)
    assert "\n" not in message and "at step 3" in message and f"{run_dir / 'last.pt'} (step 2)" in message
    state = torch.load(run_dir / "last.pt", weights_only=True)
    assert state["step"] == 2 and all(torch.isfinite(v).all() for v in state["model"].values())

    # Through the CLI: one line, exit code 1.
    calls.clear()
    config = tmp_path / "config.yaml"
    config.write_text(MODEL + "crop: 40\nbatch: 1\ncheckpoint_every: 1\n")
    result = run_cli("train", "--data", train_data, "--out", tmp_path / "cli_run", "--config", config, "--steps", 10)
    line = assert_cli_error(result, tmp_path / "cli_run", code=1, progress_bars=True)
    assert "loss became" in line and "(step 2) kept" in line


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_killed_folder_denoise_resumes_with_skip_existing(tmp_path, weights):
    src = tmp_path / "in"
    src.mkdir()
    names = [f"img{i:02d}.png" for i in range(6)]
    for i, name in enumerate(names):
        if i != 2:
            png(src / name, noisy_image(48, 48, seed=i))
    # The third input is a named pipe: reading it blocks until someone writes to it, so the kill
    # lands at a known point, with exactly the first two images done.
    os.mkfifo(src / names[2])
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "lgbpn", "denoise", src, "-o", out, "--weights", weights, "--no-r3"]
    proc = subprocess.Popen(list(map(str, cmd)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=PYTHON_ENV)

    def done():
        return sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) if out.exists() else []

    deadline = time.monotonic() + 120
    while len(done()) < 2 and time.monotonic() < deadline:
        assert proc.poll() is None, "stopped before it reached the blocking input"
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    first = done()
    assert first == names[:2]
    stamps = {name: (out / name).stat().st_mtime_ns for name in first}
    for name in first:
        assert read_image(out / name).pixels.shape == (48, 48, 3)  # complete, decodable

    (src / names[2]).unlink()
    png(src / names[2], noisy_image(48, 48, seed=2))
    result = run_cli("denoise", src, "-o", out, "--weights", weights, "--no-r3", "--skip-existing")
    assert result.exit_code == 0, result.output
    assert f"{len(names) - 2} denoised, 2 skipped (output exists), 0 failed" in result.stderr
    assert done() == names
    assert all((out / name).stat().st_mtime_ns == stamp for name, stamp in stamps.items())  # not rewritten
