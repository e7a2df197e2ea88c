"""Low-frequency correction keeps the network's detail and takes the input's low band."""

import torch

from lgbpn.nn.lowpass import gaussian_blur, restore_low_frequencies


def test_blur_preserves_constants_and_removes_fine_noise():
    flat = torch.full((1, 3, 9, 40), 7.0)
    torch.testing.assert_close(gaussian_blur(flat, 8.0), flat)  # reflect padding, even on a 9-pixel side
    torch.manual_seed(0)
    noise = torch.randn(1, 1, 128, 128)
    assert gaussian_blur(noise, 8.0).std() < 0.1 * noise.std()


def test_correction_removes_a_smooth_bias_and_keeps_detail():
    torch.manual_seed(1)
    yy, xx = torch.meshgrid(torch.arange(96.0), torch.arange(96.0), indexing="ij")
    clean = (100 + 40 * torch.sin(xx / 3) * torch.cos(yy / 4)).expand(1, 3, 96, 96)
    noisy = clean + 10 * torch.randn(1, 3, 96, 96)
    biased = clean + torch.tensor([-15.0, 25.0, 0.0]).view(1, 3, 1, 1)  # detail right, colour shifted
    fixed = restore_low_frequencies(biased, noisy)
    assert (fixed - clean).abs().mean() < 0.2 * (biased - clean).abs().mean()
    assert (fixed - clean).abs().mean() < 0.3 * (noisy - clean).abs().mean()
