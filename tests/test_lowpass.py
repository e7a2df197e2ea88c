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


def test_correction_by_bands_of_rows_equals_the_whole_image(monkeypatch):
    import lgbpn.nn.bands

    torch.manual_seed(2)
    noisy = 255 * torch.rand(2, 3, 70, 31)
    denoised = gaussian_blur(noisy, 1.0)
    whole = denoised + gaussian_blur(noisy - denoised, 4.0)
    monkeypatch.setattr(lgbpn.nn.bands, "BAND_ROWS", 5)  # bands far shorter than the blur's 12-row context
    torch.testing.assert_close(restore_low_frequencies(denoised, noisy, 4.0), whole, rtol=0, atol=1e-3)
