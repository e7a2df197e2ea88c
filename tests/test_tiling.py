"""Tiled inference: bounded memory, and equal to the untiled result where overlap covers the field."""

import pytest
import torch

from lgbpn import tiling
from lgbpn.nn.pd import pad_reflect_any, pd_batched, pd_batched_inverse, pd_tiled, pd_tiled_inverse
from lgbpn.nn.r3 import r3_masks
from lgbpn.options import DEFAULT_TILE, STUDENT_TILE, InferenceOptions
from lgbpn.tiling import denoise_tiled, plan_tiles

from .helpers import tiny_model


@pytest.fixture(scope="module")
def image():
    torch.manual_seed(1)
    return (torch.rand(2, 3, 150, 172) * 200 + 20).float()


@pytest.mark.slow
def test_apbsn_tiles_equal_whole_image_with_r3(image):
    model = tiny_model("apbsn").eval()
    whole = denoise_tiled(model, image, r3=True, seed=4, tile=1000)
    tiled = denoise_tiled(model, image, r3=True, seed=4, tile=48, overlap=40)
    # AP-BSN's tiled PD layout couples each image border with the opposite one; inside, tiles are exact.
    inner = (..., slice(24, -24), slice(24, -24))
    torch.testing.assert_close(tiled[inner], whole[inner], rtol=0, atol=1e-4)


def test_lgbpn_tiles_match_whole_image_closely(image):
    model = tiny_model("lgbpn-s").eval()
    whole = denoise_tiled(model, image, r3=False, tile=1000)
    tiled = denoise_tiled(model, image, r3=False, tile=96, overlap=48)
    # Channel attention sees the whole (sub-)image, so tiles differ slightly from the whole image.
    mse = ((tiled - whole) ** 2).mean()
    assert 10 * torch.log10(255**2 / mse) > 40


@pytest.mark.parametrize("arch", ["lgbpn-s", "apbsn"])
def test_default_tile_is_fixed_not_sized_from_memory(arch, monkeypatch):
    """LG-BPN's output depends on the tile, so the default must not move with a memory estimate."""
    model = tiny_model(arch)
    assert plan_tiles(model, DEFAULT_TILE, DEFAULT_TILE) == ([(0, DEFAULT_TILE, 0, DEFAULT_TILE)],) * 2  # whole
    plan = plan_tiles(model, 2000, 900)
    assert [core for *_, core in plan[0]][:2] == [DEFAULT_TILE, 2 * DEFAULT_TILE]
    monkeypatch.setattr(tiling, "MEMORY_BUDGET_BYTES", 1 << 20)
    monkeypatch.setattr(model, "floats_per_pixel", lambda: 1e6)
    assert plan_tiles(model, 2000, 900) == plan


def test_options_or_keywords_run_the_same(image):
    model = tiny_model("lgbpn-s").eval()
    options = InferenceOptions(r3=True, passes=2, seed=7, tile=96, overlap=24)
    torch.testing.assert_close(denoise_tiled(model, image, options),
                               denoise_tiled(model, image, r3=True, passes=2, seed=7, tile=96, overlap=24), rtol=0, atol=0)
    torch.testing.assert_close(denoise_tiled(model, image, options, seed=7),
                               denoise_tiled(model, image, options), rtol=0, atol=0)


def test_r3_masks_depend_only_on_position():
    whole = r3_masks((1, 3, 40, 50), passes=8, prob=0.16, seed=9)
    part = r3_masks((1, 3, 10, 20), passes=8, prob=0.16, seed=9, origin=(12, 24))
    assert torch.equal(part, whole[..., 12:22, 24:44])
    assert abs(whole.float().mean().item() - 0.16) < 0.01
    assert not torch.equal(whole, r3_masks((1, 3, 40, 50), passes=8, prob=0.16, seed=10))


@pytest.mark.parametrize("factor,pad", [(2, 2), (4, 0), (5, 2)])
def test_pd_round_trips(factor, pad):
    x = torch.rand(2, 3, 20 * factor, 12 * factor)
    torch.testing.assert_close(pd_tiled_inverse(pd_tiled(x, factor, pad), factor, pad), x, rtol=0, atol=0)
    torch.testing.assert_close(pd_batched_inverse(pd_batched(x, factor, pad), factor, pad), x, rtol=0, atol=0)
    sub = pd_batched(x, factor, 0)
    assert torch.equal(sub[factor + 1], x[0, :, 1::factor, 1::factor])


def test_reflect_padding_larger_than_image():
    x = torch.arange(3.0).view(1, 1, 1, 3)
    padded = pad_reflect_any(x, 0, 2, 5, 4)
    assert padded.shape == (1, 1, 3, 12)
    # columns -5..6 of [0, 1, 2] mirrored about its ends: ... 1 0 1 2 | 0 1 2 | 1 0 1 2
    assert padded[0, 0, 0].tolist() == [1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2]


@pytest.mark.parametrize("pads", [(3, 0, 2, 5), (6, 6, 6, 6), (0, 7, 0, 8), (9, 1, 1, 12)])
def test_reflect_padding_fast_path_equals_the_gather(pads):
    """Pads smaller than the image take F.pad, larger ones the index gather: both mirror alike, and no pads
    give the tensor itself."""
    x = torch.rand(2, 3, 8, 10)
    top, bottom, left, right = pads
    rows = torch.arange(-top, 8 + bottom).abs()
    rows = torch.where(rows > 7, 14 - rows, rows)
    cols = torch.arange(-left, 10 + right).abs()
    cols = torch.where(cols > 9, 18 - cols, cols)
    expected = x[..., rows[:, None], cols[None, :]] if max(top, bottom) < 8 and max(left, right) < 10 else None
    padded = pad_reflect_any(x, *pads)
    assert padded.shape == (2, 3, 8 + top + bottom, 10 + left + right)
    if expected is not None:
        torch.testing.assert_close(padded, expected, rtol=0, atol=0)
    assert torch.equal(pad_reflect_any(x[0], *pads), padded[0])  # 3-D input: the gather
    assert pad_reflect_any(x, 0, 0, 0, 0) is x


@pytest.mark.parametrize("arch", ["unet", "unet-half"])
def test_student_tiles_equal_the_whole_image(arch):
    """An ordinary network's context is bounded: with the overlap raised to it, tiles are exact."""
    model = tiny_model(arch).eval()
    image = torch.rand(2, 3, 300, 346, generator=torch.Generator().manual_seed(3)) * 255
    rows, cols = plan_tiles(model, 300, 346, tile=40, overlap=8)
    assert len(rows) > 2 and len(cols) > 2
    whole = denoise_tiled(model, image, tile=1000)
    torch.testing.assert_close(denoise_tiled(model, image, tile=40, overlap=8), whole, rtol=0, atol=1e-3)


# (transform, its inverse), written out independently of tiling.DIHEDRAL
_SAME_SHAPE = [(lambda t: t, lambda t: t), (lambda t: torch.flip(t, [3]), lambda t: torch.flip(t, [3])),
               (lambda t: torch.flip(t, [2]), lambda t: torch.flip(t, [2])),
               (lambda t: torch.rot90(t, 2, [2, 3]), lambda t: torch.rot90(t, 2, [2, 3]))]
_TRANSPOSED = [(lambda t: t.permute(0, 1, 3, 2), lambda t: t.permute(0, 1, 3, 2)),
               (lambda t: torch.rot90(t, 1, [2, 3]), lambda t: torch.rot90(t, 3, [2, 3])),
               (lambda t: torch.rot90(t, 3, [2, 3]), lambda t: torch.rot90(t, 1, [2, 3])),
               (lambda t: torch.rot90(t, 2, [2, 3]).permute(0, 1, 3, 2), lambda t: torch.rot90(t.permute(0, 1, 3, 2), 2, [2, 3]))]


@pytest.mark.parametrize("size, views", [(2, _SAME_SHAPE[:2]), (4, _SAME_SHAPE), (8, _SAME_SHAPE + _TRANSPOSED)])
def test_a_students_self_ensemble_is_its_mean_over_flips_and_rotations(size, views):
    """ensemble N: the mean of the student's outputs on N flips/rotations of the image, each turned back (2: with
    the mirror image; 4: every flip; 8: every flip and rotation); a blind-spot network keeps its own (R3)."""
    model = tiny_model("unet-half").eval()
    image = torch.rand(1, 3, 52, 70, generator=torch.Generator().manual_seed(5)) * 255
    expected = torch.stack([undo(denoise_tiled(model, view(image).contiguous(), tile=1000)) for view, undo in views]).mean(0)
    single = denoise_tiled(model, image, tile=1000)
    ensemble = denoise_tiled(model, image, tile=1000, ensemble=size)
    torch.testing.assert_close(ensemble, expected, rtol=0, atol=1e-3)
    assert (ensemble - single).abs().mean() > 0.1
    teacher = tiny_model("lgbpn-s").eval()
    assert torch.equal(denoise_tiled(teacher, image, r3=False, ensemble=size), denoise_tiled(teacher, image, r3=False))


def test_a_student_runs_on_its_own_larger_tile_unless_told_another():
    """A student's output is the same at any tile, so it takes a larger one (less overlap); --tile still rules."""
    student, teacher = tiny_model("unet-half"), tiny_model("lgbpn-s")
    assert student.default_tile() == STUDENT_TILE > DEFAULT_TILE == teacher.default_tile()
    assert InferenceOptions().tile is None
    for model in (student, teacher):
        assert plan_tiles(model, 3000, 4000) == plan_tiles(model, 3000, 4000, model.default_tile())
        assert plan_tiles(model, 3000, 4000, None, 48) == plan_tiles(model, 3000, 4000, tile=model.default_tile(), overlap=48)
    assert len(plan_tiles(student, 3000, 4000)[1]) < len(plan_tiles(student, 3000, 4000, DEFAULT_TILE)[1])


@pytest.mark.parametrize("align,overlap,tile", [(1, 0, 1), (4, 28, 40), (8, 72, 672), (12, 24, 96)])
def test_even_spans_cover_exactly_with_one_window_shape(align, overlap, tile):
    """Every window of one size once padded to the alignment (the network meets one shape), aligned starts,
    cores that tile the axis, each at least `overlap` inside its window's inner edges, and no more windows
    than fixed tiles."""
    for length in [*range(1, 200), *range(200, 3100, 37)]:
        spans = tiling._even_spans(length, tile, overlap, align)
        assert len(spans) <= len(tiling._spans(length, tile, overlap, align))
        assert len({-(-(end - start) // align) for start, end, _, _ in spans}) == 1
        assert [core for *_, core, _ in spans] == [0, *(end for *_, end in spans[:-1])] and spans[-1][3] == length
        for start, end, core_start, core_end in spans:
            assert start % align == 0 and 0 <= start <= core_start < core_end <= end <= length
            assert start == 0 or core_start - start >= overlap
            assert end == length or end - core_end >= overlap


def test_progress_function_hears_every_tile():
    model, x = tiny_model("unet-half"), torch.rand(1, 3, 256, 320) * 255
    rows, cols = plan_tiles(model, 256, 320, tile=64)
    calls = []
    out = denoise_tiled(model, x, tile=64, progress=lambda done, tiles: calls.append((done, tiles)))
    assert len(rows) * len(cols) > 4
    assert calls == [(n, len(rows) * len(cols)) for n in range(1, len(rows) * len(cols) + 1)]
    assert torch.equal(out, denoise_tiled(model, x, tile=64))
