"""The fast test-time masked convolution equals the reference's per-tap bilinear sampling."""

import pytest
import torch

from lgbpn.nn.masked_conv import MaskedConv2d, centre_mask, diamond_mask, even_grid_mask, resampled_kernel
from lgbpn.reference_path import chopped, sample_taps, sampled_masked_conv

MASKS = {"diamond9": lambda: diamond_mask(9), "grid21": lambda: even_grid_mask(21, radius=4)}


def _conv(mask_name: str, seed: int = 0) -> MaskedConv2d:
    torch.manual_seed(seed)
    conv = MaskedConv2d(5, 7, MASKS[mask_name]())
    with torch.no_grad():
        conv.weight.normal_()  # unit-scale weights so round-off is measured on outputs of size ~30
        conv.bias.normal_()
    return conv


@pytest.mark.parametrize("mask_name", list(MASKS))
@pytest.mark.parametrize("ratio", [0.2, 0.43, 0.5, 0.72, 0.8, 0.97, 1.0])
@pytest.mark.parametrize("size", [(23, 30), (32, 27)])
def test_resampled_kernel_equals_per_tap_sampling(mask_name, ratio, size):
    conv = _conv(mask_name)
    x = torch.rand(2, 5, *size, dtype=torch.float64) * 100
    with torch.no_grad():
        expected = torch.nn.functional.conv2d(
            sample_taps(x, conv.kernel_size[0], ratio), conv.masked_weight().double(), conv.bias.double(),
            stride=conv.kernel_size[0],
        )
        fast = conv(x.float(), ratio).double()
    scale = expected.abs().max()
    assert scale > 10
    assert (fast - expected).abs().max() <= 2e-6 * scale  # float32 round-off of a ~1000-term sum


def test_fast_path_is_a_smaller_dense_kernel():
    conv = _conv("grid21")
    kernel, radius = resampled_kernel(conv.masked_weight(), 0.8)
    assert radius == 8 and kernel.shape[-1] == 17  # ceil(0.8 * 10): no extra ring for integer reach
    kernel, radius = resampled_kernel(conv.masked_weight(), 0.43)
    assert radius == 5
    # Bilinear weights sum to one, so the kernel's total weight is preserved.
    torch.testing.assert_close(kernel.sum((-2, -1)), conv.masked_weight().sum((-2, -1)), rtol=1e-5, atol=1e-5)


def test_ratio_one_is_the_plain_masked_conv():
    conv = _conv("diamond9")
    x = torch.rand(1, 5, 20, 20)
    with torch.no_grad():
        torch.testing.assert_close(conv(x, 1.0), conv(x), rtol=0, atol=1e-5)
        kernel, _ = resampled_kernel(conv.masked_weight(), 1.0)
    torch.testing.assert_close(kernel, conv.masked_weight(), rtol=0, atol=1e-6)


def test_invalid_ratio_rejected():
    with pytest.raises(ValueError):
        resampled_kernel(torch.ones(1, 1, 9, 9), 1.5)


@pytest.mark.parametrize("mask_name", list(MASKS))
def test_quadrant_chop_changes_nothing(mask_name):
    conv = _conv(mask_name)
    x = torch.rand(1, 5, 41, 38, dtype=torch.float64)
    with torch.no_grad():
        whole = sampled_masked_conv(conv.double(), x, 0.72)
        quads = chopped(lambda q: sampled_masked_conv(conv, q, 0.72), x, shave=11, min_size=300)  # one level of recursion
    torch.testing.assert_close(quads, whole, rtol=0, atol=1e-9)


def test_masks_are_blind_where_they_should_be():
    d9 = diamond_mask(9)
    assert not d9[4, 4] and not d9[0, 4] and d9[0, 0] and int(d9.sum()) == 40
    g21 = even_grid_mask(21, radius=4)
    assert not g21[10, 10] and not g21[10, 12] and not g21[11, 0] and g21[10, 16] and int(g21.sum()) == 108
    c3 = centre_mask(3)
    assert not c3[1, 1] and int(c3.sum()) == 8


def test_mask_is_applied_functionally_even_if_weights_are_not_blind():
    conv = MaskedConv2d(1, 1, diamond_mask(9))
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
    x = torch.zeros(1, 1, 21, 21)
    x[..., 10, 10] = 1.0  # an impulse at the centre must not reach the centre's output
    x[..., 10, 12] = 0.0
    with torch.no_grad():
        for ratio in (None, 0.72, 0.46):
            out = conv(x, ratio)
            assert out[..., 10, 10].abs().item() < 1e-6, ratio
    assert conv.weight.min().item() == 1.0  # parameters untouched


def test_resampled_kernel_is_built_on_the_weights_device():
    # The tent weights were once made on the CPU, so a test-time pass of LG-BPN failed on a GPU (found on one).
    weight = torch.zeros(7, 5, 9, 9, device="meta")
    kernel, radius = resampled_kernel(weight, 0.72)
    assert kernel.device == weight.device and kernel.shape == (7, 5, 2 * radius + 1, 2 * radius + 1)
