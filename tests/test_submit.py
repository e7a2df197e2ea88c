"""SIDD and DND benchmark submission files: written, then decoded back exactly."""

import base64
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from lgbpn.data.submit import (
    SIDD_BENCHMARK_SHAPE,
    denoise_dnd,
    denoise_sidd_benchmark,
    read_sidd_submission_csv,
    write_sidd_submission,
)
from lgbpn.errors import DataError, WriteError
from lgbpn.nn.lowpass import DEFAULT_SIGMA

RNG = np.random.default_rng(0)
SMALL = (2, 3, 8, 6, 3)


def invert(x: np.ndarray) -> np.ndarray:
    return 255 - x


def check_mat(path: Path, blocks: np.ndarray) -> dict:
    mat = scipy.io.loadmat(path)
    cells = mat["DenoisedBlocksSrgb"]
    assert cells.dtype == object and cells.shape == blocks.shape[:2]
    got = np.stack(cells.ravel())  # a cell array of blocks, (image, block) row-major
    assert got.dtype == np.uint8
    assert np.array_equal(got.reshape(blocks.shape), blocks)  # np.testing is seconds slower at 250 MB
    return mat


def test_sidd_submission_round_trip(tmp_path):
    blocks = RNG.integers(0, 256, SMALL, dtype=np.uint8)
    paths = write_sidd_submission(blocks, tmp_path, shape=SMALL, time_mp=1.5, optional_data={"MethodName": "x"})
    assert paths == {"csv": tmp_path / "SubmitSrgb.csv", "mat": tmp_path / "SubmitSrgb.mat"}

    lines = paths["csv"].read_text().splitlines()
    assert lines[0] == "ID,BLOCK" and len(lines) == 1 + 6
    # the benchmark's own encoding: IDs in (image, block) row-major order, base64 of the raw HWC bytes
    assert lines[1 + 1 * 3 + 2] == f"5,{base64.b64encode(blocks[1, 2].tobytes()).decode()}"
    np.testing.assert_array_equal(read_sidd_submission_csv(paths["csv"], shape=SMALL), blocks)

    mat = check_mat(paths["mat"], blocks)
    assert mat["TimeMPSrgb"].item() == 1.5
    assert mat["OptionalData"]["MethodName"].item().item() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SubmitSrgb.csv", "SubmitSrgb.mat"]  # no temp files


@pytest.mark.slow
def test_sidd_submission_real_size_round_trip(tmp_path):
    blocks = np.empty(SIDD_BENCHMARK_SHAPE, dtype=np.uint8)
    blocks[...] = np.arange(40 * 32, dtype=np.uint16).reshape(40, 32, 1, 1, 1) % 251  # each block distinct
    blocks[..., 7, 9, 1] = 255 - blocks[..., 7, 9, 1]
    paths = write_sidd_submission(blocks, tmp_path)
    assert np.array_equal(read_sidd_submission_csv(paths["csv"]), blocks)
    check_mat(paths["mat"], blocks)


def test_sidd_submission_default_is_the_real_layout(tmp_path):
    with pytest.raises(DataError, match=r"\(40, 32, 256, 256, 3\)"):
        write_sidd_submission(np.zeros(SMALL, np.uint8), tmp_path)
    with pytest.raises(DataError, match="uint8"):
        write_sidd_submission(np.zeros(SMALL, np.float32), tmp_path, shape=SMALL)


def test_sidd_submission_unwritable_folder(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(WriteError, match="SubmitSrgb.csv"):
        write_sidd_submission(np.zeros(SMALL, np.uint8), tmp_path / "file", shape=SMALL)


@pytest.mark.parametrize(
    "content, problem",
    [
        ("ID,DATA\n", "header"),
        ("ID,BLOCK\n0,AAAA\n", "bad line 2"),  # 3 bytes, not one block
        ("ID,BLOCK\n", "0 blocks"),
        ("ID,BLOCK\n1,{b}\n", "expected 0"),
        ("ID,BLOCK\n0,{b}!\n", "bad line 2"),
    ],
)
def test_bad_csv_is_a_data_error(tmp_path, content, problem):
    block = base64.b64encode(bytes(8 * 6 * 3)).decode()
    path = tmp_path / "SubmitSrgb.csv"
    path.write_text(content.format(b=block))
    with pytest.raises(DataError, match=problem):
        read_sidd_submission_csv(path, shape=SMALL)


def test_denoise_sidd_benchmark(tmp_path):
    noisy = RNG.integers(0, 256, SMALL, dtype=np.uint8)
    mat_path = tmp_path / "BenchmarkNoisyBlocksSrgb.mat"
    scipy.io.savemat(mat_path, {"BenchmarkNoisyBlocksSrgb": noisy})
    paths = denoise_sidd_benchmark(mat_path, invert, tmp_path / "out", "invert", progress=False)
    np.testing.assert_array_equal(read_sidd_submission_csv(paths["csv"], shape=SMALL), 255 - noisy)
    mat = check_mat(paths["mat"], 255 - noisy)
    assert mat["TimeMPSrgb"].item() >= 0 and mat["OptionalData"]["MethodName"].item().item() == "invert"


def test_denoiser_with_wrong_output_is_an_error(tmp_path):
    mat_path = tmp_path / "BenchmarkNoisyBlocksSrgb.mat"
    scipy.io.savemat(mat_path, {"BenchmarkNoisyBlocksSrgb": np.zeros(SMALL, np.uint8)})
    with pytest.raises(DataError, match="denoiser returned float"):
        denoise_sidd_benchmark(mat_path, lambda x: x / 255.0, tmp_path / "out", "x", progress=False)


def write_dnd(root: Path, images: list[np.ndarray], boxes: list[np.ndarray]) -> None:
    """A DND folder as the toolkit reads it (see tests/test_data_formats.py for the layout notes)."""
    (root / "images_srgb").mkdir(parents=True)
    with h5py.File(root / "info.mat", "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        ref_list = [refs.create_dataset(f"b{i}", data=b.T.astype(np.float64)).ref for i, b in enumerate(boxes)]
        cell = f.create_group("info").create_dataset("boundingboxes", (1, len(boxes)), dtype=h5py.ref_dtype)
        cell[0, :] = ref_list
    for i, img in enumerate(images):
        with h5py.File(root / "images_srgb" / f"{i + 1:04d}.mat", "w", userblock_size=512) as f:
            f.create_dataset("InoisySRGB", data=img.astype(np.float32).T)


def test_denoise_dnd_bundle(tmp_path):
    images = [RNG.integers(0, 256, (30, 40, 3)) / 255.0 for _ in range(2)]
    boxes = [np.array([[1, 1, 10, 12], [21, 31, 30, 40]]), np.array([[5, 7, 20, 9], [2, 2, 3, 3], [1, 1, 30, 40]])]
    write_dnd(tmp_path / "dnd", images, boxes)

    out = denoise_dnd(tmp_path / "dnd", invert, tmp_path / "bundled", progress=False)
    assert out == tmp_path / "bundled"
    assert sorted(p.name for p in out.iterdir()) == ["0001.mat", "0002.mat"]
    for i, (img, bs) in enumerate(zip(images, boxes)):
        mat = scipy.io.loadmat(out / f"{i + 1:04d}.mat")
        assert mat["israw"].item() == 0 and mat["eval_version"].item() == "1.0"
        cells = mat["Idenoised"]
        assert cells.dtype == object and cells.shape == (1, len(bs))
        for k, (r1, c1, r2, c2) in enumerate(bs):
            noisy = np.round(img[r1 - 1 : r2, c1 - 1 : c2] * 255).astype(np.uint8)
            assert cells[0, k].dtype == np.float32
            np.testing.assert_array_equal(cells[0, k], (255 - noisy).astype(np.float32) / 255)


@pytest.mark.parametrize("flags, label", [
    ([], "lgbpn-s (no R3, no output corrections)"),
    (["--lowpass", "--blend"], f"lgbpn-s (no R3, low-frequency correction (sigma {DEFAULT_SIGMA:g}), residual Wiener blend)"),
])
def test_submit_command_sends_the_papers_output_unless_told_and_labels_it(tmp_path, flags, label):
    """`lgbpn submit` writes the network's own output by default; asked-for corrections are named."""
    from click.testing import CliRunner

    from lgbpn.cli import main
    from lgbpn.denoiser import Denoiser

    from .helpers import noisy_image, tiny_weights

    weights = tiny_weights(tmp_path / "tiny.safetensors")
    shape = (1, 2, 40, 36, 3)
    noisy = np.stack([noisy_image(*shape[2:4], seed=i) for i in range(2)]).reshape(shape)
    scipy.io.savemat(tmp_path / "BenchmarkNoisyBlocksSrgb.mat", {"BenchmarkNoisyBlocksSrgb": noisy})
    args = ["submit", "sidd", "--data", tmp_path / "BenchmarkNoisyBlocksSrgb.mat", "-o", tmp_path / "out",
            "--weights", weights, "--no-r3", *flags]
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert label in result.output
    corrected = bool(flags)
    denoiser = Denoiser.from_weights(weights, preset="sidd", r3=False, blend=corrected,
                                     lowpass_sigma=DEFAULT_SIGMA if corrected else None)
    expected = np.stack([denoiser(block) for block in noisy.reshape(-1, *shape[2:])]).reshape(shape)
    mat = check_mat(tmp_path / "out" / "SubmitSrgb.mat", expected)
    assert mat["OptionalData"]["MethodName"].item().item() == label
