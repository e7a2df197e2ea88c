"""lgbpn.layout: H x W x C arrays <-> (N, C, H, W) tensors, grey <-> RGB."""

import numpy as np
import torch

from lgbpn.layout import grey_to_rgb, rgb_to_grey, to_channels_first, to_channels_last


def test_channel_axis_round_trip():
    pixels = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)  # N x H x W x C
    x = to_channels_first(pixels)
    assert x.shape == (2, 5, 3, 4) and x.is_contiguous()
    assert x[1, 4, 2, 3] == pixels[1, 2, 3, 4]
    back = to_channels_last(x)
    assert back.flags.c_contiguous and np.array_equal(back, pixels)
    one = to_channels_first(pixels[0])[None]  # an image as a batch of one
    assert torch.equal(one, x[:1])
    assert np.array_equal(to_channels_last(one[0]), pixels[0])


def test_channels_first_copies_any_array():
    pixels = np.arange(4 * 6 * 1, dtype=np.float32).reshape(4, 6, 1)
    flipped = np.rot90(pixels)[:, ::-1]  # negative strides, as crop augmentation makes
    assert np.array_equal(to_channels_last(to_channels_first(flipped)), flipped)
    pixels.flags.writeable = False
    x = to_channels_first(pixels)
    x += 1  # a tensor of its own: the array is untouched
    assert pixels[0, 0, 0] == 0


def test_grey_and_rgb_on_arrays_and_tensors():
    grey = np.arange(6, dtype=np.float32).reshape(2, 3, 1)
    rgb = grey_to_rgb(grey)
    assert rgb.shape == (2, 3, 3) and all(np.array_equal(rgb[..., [c]], grey) for c in range(3))
    assert grey_to_rgb(rgb) is rgb
    assert np.array_equal(rgb_to_grey(rgb), grey)
    tensor = to_channels_first(grey)  # (1, H, W)
    assert torch.equal(grey_to_rgb(tensor, axis=-3), to_channels_first(rgb))
    assert torch.equal(rgb_to_grey(grey_to_rgb(tensor, axis=-3), axis=-3), tensor)
