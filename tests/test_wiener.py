"""The residual Wiener blend restores lost detail and keeps noise out where the network was right."""

import torch

from lgbpn.nn.lowpass import gaussian_blur
from lgbpn.nn.wiener import residual_guard, residual_wiener_blend


def scene(size=128):
    """Flat grey left, a fine checkerboard (which a smoothing denoiser wipes out) on the right 60%."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    texture = 40.0 * (((xx // 2) + (yy // 2)) % 2 * 2 - 1)
    return (120 + texture * (xx >= 2 * size // 5)).float().expand(1, 3, size, size)


def test_blend_gives_texture_back_and_keeps_flat_areas_denoised():
    # Texture covers most of the image: the noise level must come from the flat part only.
    torch.manual_seed(0)
    clean = scene()
    noisy = clean + 5 * torch.randn_like(clean)
    smoothed = gaussian_blur(noisy, 2.0)  # an over-smoothing "denoiser": flat area fine, texture gone
    out = residual_wiener_blend(smoothed, noisy)
    flat, textured = (slice(None), slice(None), slice(8, -8), slice(8, 44)), (..., slice(8, -8), slice(60, -8))
    err = lambda x, region: (x - clean)[region].square().mean()  # noqa: E731
    assert err(out, textured) < 0.1 * err(smoothed, textured)  # texture restored from the input
    assert err(out, textured) < 1.2 * err(noisy, textured)
    assert err(out, flat) < 0.5 * err(noisy, flat)  # flat area stays denoised


def test_blend_is_a_per_pixel_convex_combination():
    torch.manual_seed(1)
    noisy = 255 * torch.rand(2, 3, 40, 33)
    denoised = gaussian_blur(noisy, 1.5)
    out = residual_wiener_blend(denoised, noisy)
    low, high = torch.minimum(noisy, denoised), torch.maximum(noisy, denoised)
    assert torch.all(out >= low - 1e-4) and torch.all(out <= high + 1e-4)
    assert not torch.allclose(out, denoised) and not torch.allclose(out, noisy)
    torch.testing.assert_close(residual_wiener_blend(noisy, noisy), noisy)  # nothing removed: nothing to add


def test_blend_handles_tiny_images_and_batches_independently():
    torch.manual_seed(2)
    a = 255 * torch.rand(1, 3, 3, 5)
    b = 255 * torch.rand(1, 3, 3, 5)
    both = residual_wiener_blend(torch.cat([a, b]) * 0.9, torch.cat([a, b]))
    torch.testing.assert_close(both[1:], residual_wiener_blend(b * 0.9, b))  # own noise level per image


def test_guard_gives_erased_texture_back_and_leaves_noise_removal_alone():
    """A student that wiped out a fine grille gets it back; where it removed noise only, nothing changes."""
    torch.manual_seed(3)
    clean = scene()
    noisy = clean + 5 * torch.randn_like(clean)
    smoothed = gaussian_blur(noisy, 2.0)
    guarded, blended = residual_guard(smoothed, noisy), residual_wiener_blend(smoothed, noisy)
    flat, textured = (slice(None), slice(None), slice(8, -8), slice(8, 44)), (..., slice(8, -8), slice(60, -8))
    err = lambda x, region: (x - clean)[region].square().mean()  # noqa: E731
    assert err(guarded, textured) < 0.2 * err(smoothed, textured)
    assert torch.equal(guarded[flat], smoothed[flat])  # a residual of noise alone is far below the margin
    assert err(guarded, flat) < err(blended, flat)  # the ordinary blend lets some noise back there


def test_blend_by_bands_of_rows_equals_the_whole_image_formula(monkeypatch):
    """Bands of rows with their context give the whole image's values exactly, written in place or not."""
    import lgbpn.nn.bands
    from lgbpn.nn.wiener import flat_area_median, local_mean, local_variance

    monkeypatch.setattr(lgbpn.nn.bands, "BAND_ROWS", 7)  # bands shorter than the 9x9 window's context, a last one of 2
    torch.manual_seed(4)
    noisy = 255 * torch.rand(2, 3, 51, 23)
    denoised = gaussian_blur(noisy, 1.5)
    residual = noisy - denoised
    energy = local_mean(residual.square().mean(dim=1, keepdim=True), 9)
    noise_var = flat_area_median(energy, local_variance(noisy.mean(dim=1, keepdim=True), 9))
    for factor, blend in ((1.0, residual_wiener_blend), (16.0, lambda d, n, **kw: residual_guard(d, n, **kw))):
        expected = denoised + (1 - factor * noise_var / energy).clamp(0, 1) * residual
        torch.testing.assert_close(blend(denoised, noisy), expected, rtol=0, atol=1e-4)
        in_place = denoised.clone()
        assert blend(in_place, noisy, out=in_place) is in_place
        assert torch.equal(in_place, blend(denoised, noisy))


def test_local_mean_is_the_box_mean():
    import torch.nn.functional as F

    from lgbpn.nn.pd import pad_reflect_any
    from lgbpn.nn.wiener import local_mean

    torch.manual_seed(5)
    for shape, window in (((2, 1, 37, 29), 9), ((1, 3, 3, 5), 9), ((1, 1, 16, 16), 3)):
        x = 255 * torch.rand(shape)
        half = window // 2
        expected = F.avg_pool2d(pad_reflect_any(x, half, half, half, half), window, stride=1)
        torch.testing.assert_close(local_mean(x, window), expected)  # float32 round-off apart
