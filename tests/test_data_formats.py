"""discover() on small files written in the exact on-disk formats of SIDD, DND and image folders."""

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from PIL import Image

from lgbpn.data.formats import discover
from lgbpn.errors import DataError

RNG = np.random.default_rng(0)
# (images, blocks, H, W, C); H != W so a swapped axis cannot pass.
BLOCKS_SHAPE = (2, 3, 16, 12, 3)


def random_u8(*shape):
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def write_mat73(path: Path, **arrays) -> None:
    """Mimic MATLAB's `save -v7.3`: HDF5 with a 512-byte user block, arrays stored column-major."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, a in arrays.items():
            f.create_dataset(name, data=a.T).attrs["MATLAB_class"] = np.bytes_("uint8")


def write_dnd(root: Path, images: list[np.ndarray], boxes: list[np.ndarray]) -> None:
    """A DND folder as the toolkit reads it: info.mat (v7.3) whose `info.boundingboxes` is a cell
    array of references to (K, 4) double boxes, and images_srgb/%04d.mat with single InoisySRGB."""
    (root / "images_srgb").mkdir(parents=True)
    with h5py.File(root / "info.mat", "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")  # where MATLAB keeps the contents of cells
        ref_list = [refs.create_dataset(f"b{i}", data=b.T.astype(np.float64)).ref for i, b in enumerate(boxes)]
        cell = f.create_group("info").create_dataset("boundingboxes", (1, len(boxes)), dtype=h5py.ref_dtype)
        cell[0, :] = ref_list
    for i, img in enumerate(images):
        with h5py.File(root / "images_srgb" / f"{i + 1:04d}.mat", "w", userblock_size=512) as f:
            f.create_dataset("InoisySRGB", data=img.astype(np.float32).T)  # MATLAB (H, W, 3) -> h5py (3, W, H)


def write_png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def check_blocks(samples, key, noisy, clean):
    n_img, n_blk = noisy.shape[:2]
    assert [s.name for s in samples] == [f"{key}:block_{i}_{j}" for i in range(n_img) for j in range(n_blk)]
    for s, (i, j) in zip(samples, np.ndindex(n_img, n_blk)):
        got = s.noisy()
        assert got.dtype == np.uint8 and got.shape == noisy.shape[2:]
        np.testing.assert_array_equal(got, noisy[i, j])
        if clean is None:
            assert s.clean is None
        else:
            np.testing.assert_array_equal(s.clean(), clean[i, j])


@pytest.mark.parametrize("version", ["v5", "v7", "v7.3"])
def test_sidd_validation_blocks(tmp_path, version):
    noisy, clean = random_u8(*BLOCKS_SHAPE), random_u8(*BLOCKS_SHAPE)
    if version != "v7.3":  # v7 is v5 with zlib-compressed variables, MATLAB's default
        for key, a in (("ValidationNoisyBlocksSrgb", noisy), ("ValidationGtBlocksSrgb", clean)):
            scipy.io.savemat(tmp_path / f"{key}.mat", {key: a}, do_compression=version == "v7")
    else:
        write_mat73(tmp_path / "ValidationNoisyBlocksSrgb.mat", ValidationNoisyBlocksSrgb=noisy)
        write_mat73(tmp_path / "ValidationGtBlocksSrgb.mat", ValidationGtBlocksSrgb=clean)
    check_blocks(discover(tmp_path), "ValidationNoisyBlocksSrgb", noisy, clean)
    check_blocks(discover(tmp_path / "ValidationNoisyBlocksSrgb.mat"), "ValidationNoisyBlocksSrgb", noisy, clean)


@pytest.mark.parametrize("version", ["v5", "v7.3"])
def test_sidd_benchmark_blocks_have_no_clean(tmp_path, version):
    noisy = random_u8(*BLOCKS_SHAPE)
    path = tmp_path / "BenchmarkNoisyBlocksSrgb.mat"
    if version == "v5":
        scipy.io.savemat(path, {"BenchmarkNoisyBlocksSrgb": noisy})
    else:
        write_mat73(path, BenchmarkNoisyBlocksSrgb=noisy)
    check_blocks(discover(path), "BenchmarkNoisyBlocksSrgb", noisy, None)


def test_sidd_validation_without_gt_file(tmp_path):
    noisy = random_u8(*BLOCKS_SHAPE)
    scipy.io.savemat(tmp_path / "ValidationNoisyBlocksSrgb.mat", {"ValidationNoisyBlocksSrgb": noisy})
    check_blocks(discover(tmp_path), "ValidationNoisyBlocksSrgb", noisy, None)


def test_sidd_block_loader_returns_copies(tmp_path):
    noisy = random_u8(*BLOCKS_SHAPE)
    scipy.io.savemat(tmp_path / "BenchmarkNoisyBlocksSrgb.mat", {"BenchmarkNoisyBlocksSrgb": noisy})
    sample = discover(tmp_path)[0]
    sample.noisy()[:] = 0  # must not reach the cached array
    np.testing.assert_array_equal(sample.noisy(), noisy[0, 0])


def test_sidd_mismatched_gt_is_an_error(tmp_path):
    noisy, clean = random_u8(*BLOCKS_SHAPE), random_u8(1, 3, 16, 12, 3)
    scipy.io.savemat(tmp_path / "ValidationNoisyBlocksSrgb.mat", {"ValidationNoisyBlocksSrgb": noisy})
    scipy.io.savemat(tmp_path / "ValidationGtBlocksSrgb.mat", {"ValidationGtBlocksSrgb": clean})
    with pytest.raises(DataError, match="ValidationGtBlocksSrgb.mat"):
        discover(tmp_path)


def test_mat_without_sidd_variable_is_an_error(tmp_path):
    scipy.io.savemat(tmp_path / "other.mat", {"x": np.zeros(3)})
    with pytest.raises(DataError, match="other.mat"):
        discover(tmp_path / "other.mat")


def test_dnd(tmp_path):
    h, w = 40, 50  # H != W: a transposed read cannot match
    images = [RNG.integers(0, 256, (h, w, 3)) / 255.0 for _ in range(2)]
    images[0][0, 0, 0], images[0][0, 1, 0] = 1.2, -0.1  # out-of-range values are clipped
    # [row1, col1, row2, col2], 1-based inclusive, as in the DND info.mat
    boxes = [
        np.array([[1, 1, 8, 10], [11, 21, 40, 50], [5, 3, 6, 3]]),
        np.array([[2, 30, 17, 45], [21, 1, 36, 16]]),
    ]
    write_dnd(tmp_path, images, boxes)

    samples = discover(tmp_path)
    assert [s.name for s in samples] == ["dnd:0001_01", "dnd:0001_02", "dnd:0001_03", "dnd:0002_01", "dnd:0002_02"]
    crops = [(img, b) for img, bs in zip(images, boxes) for b in bs]
    for s, (img, (r1, c1, r2, c2)) in zip(samples, crops):
        assert s.clean is None
        expected = np.clip(np.round(img[r1 - 1 : r2, c1 - 1 : c2] * 255), 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(s.noisy(), expected)
    assert samples[0].noisy()[0, 0, 0] == 255 and samples[0].noisy()[0, 1, 0] == 0


def test_dnd_box_outside_the_image_is_an_error(tmp_path):
    write_dnd(tmp_path, [np.zeros((8, 6, 3))], [np.array([[1, 1, 8, 6], [1, 1, 6, 8]])])
    first, second = discover(tmp_path)
    assert first.noisy().shape == (8, 6, 3)
    with pytest.raises(DataError, match="0001.mat: box .* outside the 8x6 image"):
        second.noisy()


def test_dnd_missing_image_is_an_error(tmp_path):
    write_dnd(tmp_path, [np.zeros((8, 8, 3))], [np.array([[1, 1, 4, 4]]), np.array([[1, 1, 4, 4]])])
    with pytest.raises(DataError, match="0002.mat"):
        discover(tmp_path)


def test_sidd_medium(tmp_path):
    scene = tmp_path / "Data" / "0001_001_S6_00100_00060_3200_L"
    pairs = {}
    for n in ("010", "011"):
        noisy, gt = random_u8(6, 9, 3), random_u8(6, 9, 3)
        write_png(scene / f"0001_NOISY_SRGB_{n}.PNG", noisy)
        write_png(scene / f"0001_GT_SRGB_{n}.PNG", gt)
        pairs[f"Data/{scene.name}/0001_NOISY_SRGB_{n}.PNG"] = (noisy, gt)
    lonely = random_u8(5, 4, 3)
    write_png(tmp_path / "Data" / "0002_002_GP_00100_00060_3200_N" / "0002_NOISY_SRGB_010.PNG", lonely)

    samples = discover(tmp_path)
    assert [s.name for s in samples] == [*pairs, "Data/0002_002_GP_00100_00060_3200_N/0002_NOISY_SRGB_010.PNG"]
    for s in samples[:2]:
        np.testing.assert_array_equal(s.noisy(), pairs[s.name][0])
        np.testing.assert_array_equal(s.clean(), pairs[s.name][1])
    np.testing.assert_array_equal(samples[2].noisy(), lonely)
    assert samples[2].clean is None


def test_paired_folder(tmp_path):
    a_noisy, a_clean, b_noisy = random_u8(7, 5, 3), random_u8(7, 5, 3), random_u8(3, 8, 3)
    write_png(tmp_path / "noisy" / "a.png", a_noisy)
    write_png(tmp_path / "clean" / "a.png", a_clean)
    write_png(tmp_path / "noisy" / "sub" / "b.PNG", b_noisy)  # no clean partner

    samples = discover(tmp_path)
    assert [s.name for s in samples] == ["a.png", "sub/b.PNG"]
    np.testing.assert_array_equal(samples[0].noisy(), a_noisy)
    np.testing.assert_array_equal(samples[0].clean(), a_clean)
    np.testing.assert_array_equal(samples[1].noisy(), b_noisy)
    assert samples[1].clean is None


def test_paired_folder_named_by_its_noisy_half(tmp_path):
    """`--data DATA/noisy` loads as `--data DATA` does: the clean partners sit outside the given folder."""
    a_noisy, a_clean, b_noisy = random_u8(7, 5, 3), random_u8(7, 5, 3), random_u8(3, 8, 3)
    write_png(tmp_path / "noisy" / "a.png", a_noisy)
    write_png(tmp_path / "clean" / "a.png", a_clean)
    write_png(tmp_path / "noisy" / "sub" / "b.png", b_noisy)

    samples = discover(tmp_path / "noisy")
    assert [s.name for s in samples] == [s.name for s in discover(tmp_path)] == ["a.png", "sub/b.png"]
    np.testing.assert_array_equal(samples[0].noisy(), a_noisy)
    np.testing.assert_array_equal(samples[0].clean(), a_clean)
    assert samples[1].clean is None


def test_plain_folder(tmp_path):
    x, z = random_u8(4, 6, 3), random_u8(5, 3, 3)
    write_png(tmp_path / "x.PNG", x)
    Image.fromarray(z).save(tmp_path / "z.TIFF")
    write_png(tmp_path / "sub" / "y.jpg", random_u8(8, 8, 3))
    Image.fromarray(random_u8(4, 4)).save(tmp_path / "gray.tif")  # grey images come back as RGB
    write_png(tmp_path / ".hidden.png", x)
    (tmp_path / "notes.txt").write_text("not an image")

    samples = discover(tmp_path)
    assert [s.name for s in samples] == ["gray.tif", "sub/y.jpg", "x.PNG", "z.TIFF"]
    assert all(s.clean is None for s in samples)
    np.testing.assert_array_equal(samples[2].noisy(), x)
    np.testing.assert_array_equal(samples[3].noisy(), z)
    assert samples[0].noisy().shape == (4, 4, 3) and samples[1].noisy().shape == (8, 8, 3)


def test_unreadable_image_is_a_data_error(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    (sample,) = discover(tmp_path)
    with pytest.raises(DataError, match="broken.png"):
        sample.noisy()


@pytest.mark.parametrize("make", ["empty", "no_images", "missing", "not_mat"])
def test_nothing_to_load_is_a_data_error(tmp_path, make):
    root = tmp_path / "data"
    if make == "empty":
        root.mkdir()
    elif make == "no_images":
        root.mkdir()
        (root / "readme.txt").write_text("hi")
    elif make == "not_mat":
        root.write_text("hi")
    with pytest.raises(DataError, match=str(root)):
        discover(root)
