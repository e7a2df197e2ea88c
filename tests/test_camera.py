"""The camera-noise simulator: the pipeline's pieces invert each other, and the noise behaves as a camera's."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from lgbpn.data.camera import (
    TONES,
    bayer_masks,
    demosaic_bilinear,
    demosaic_malvar,
    sample_camera,
    sensor_noise,
    simulate,
    tone_forward,
    tone_inverse,
)
from lgbpn.io import read_image
from lgbpn.metrics import psnr
from lgbpn.noise import measure_noise

PHASES = [(0, 0), (0, 1), (1, 0), (1, 1)]


def photo(size: int = 128) -> np.ndarray:
    """A clean colour photo crop, float 0..1."""
    from skimage import data

    return data.coffee()[100 : 100 + size, 200 : 200 + size].astype(np.float32) / 255


def plain(camera, **changes):
    """The capture without in-camera processing that would hide the sensor's noise, and without JPEG."""
    return replace(camera, chroma_blur=0.0, luma_nr=0.0, sharpen=0.0, jpeg_quality=None, **changes)


def noise_of(camera, image: np.ndarray, seed: int = 1) -> np.ndarray:
    noisy, clean = simulate(image, np.random.default_rng(seed), camera)
    return noisy.astype(np.float32) - clean * 255


def test_shapes_dtypes_and_determinism():
    image = photo(96)[:, :80]
    noisy, clean = simulate(image, np.random.default_rng(3))
    assert noisy.shape == clean.shape == (96, 80, 3)
    assert noisy.dtype == np.uint8 and clean.dtype == np.float32
    assert 0 <= clean.min() and clean.max() <= 1
    again = simulate(image, np.random.default_rng(3))
    np.testing.assert_array_equal(again[0], noisy)
    np.testing.assert_array_equal(again[1], clean)
    other = simulate(image, np.random.default_rng(4))
    assert not np.array_equal(other[0], noisy)
    with pytest.raises(ValueError, match="RGB"):
        simulate(image[..., 0], np.random.default_rng(3))


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("demosaic", [demosaic_bilinear, demosaic_malvar])
def test_demosaicking_is_exact_on_planes_of_colour(demosaic, phase):
    """Constant colour comes back everywhere, and a linear ramp per channel (no Laplacian) away from the
    edges, in every Bayer phase."""
    cfa = bayer_masks(24, 20, phase)
    assert (cfa.sum(-1) == 1).all() and cfa[phase[0], phase[1], 0] and cfa[..., 1].mean() == 0.5
    yy, xx = np.mgrid[0:24, 0:20].astype(np.float64)
    constant = np.broadcast_to(np.array([0.2, 0.5, 0.9]), (24, 20, 3))
    np.testing.assert_allclose(demosaic((constant * cfa).sum(-1), cfa), constant, atol=1e-12)
    ramp = np.stack([0.2 + 0.01 * yy, 0.5 + 0.02 * xx, 0.9 - 0.01 * xx - 0.005 * yy], axis=-1)
    np.testing.assert_allclose(demosaic((ramp * cfa).sum(-1), cfa)[2:-2, 2:-2], ramp[2:-2, 2:-2], atol=1e-12)


def test_malvar_beats_bilinear_on_a_photo():
    image = photo(256).astype(np.float64)
    cfa = bayer_masks(256, 256, (1, 0))
    mosaic = (image * cfa).sum(-1)
    scores = {f.__name__: peak_signal_noise_ratio(image, np.clip(f(mosaic, cfa), 0, 1), data_range=1.0)
              for f in (demosaic_bilinear, demosaic_malvar)}
    assert scores["demosaic_malvar"] > scores["demosaic_bilinear"] + 2, scores


@pytest.mark.parametrize("tone", TONES)
def test_noiseless_capture_of_flat_colours_gives_the_photo_back(tone):
    """Tone curve, colour matrix and white balance run backwards then forwards are the identity: a noiseless
    capture of patches of constant colour (which demosaicking keeps exactly) returns them."""
    rng = np.random.default_rng(0)
    colours = rng.uniform(0.05, 0.9, (4, 3)).astype(np.float32)
    image = colours.repeat(16, 0)[:, None].repeat(64, 1)  # 4 bands of 16 rows
    for seed in range(3):
        camera = plain(sample_camera(np.random.default_rng(seed)).noiseless(), tone=tone)
        _, clean = simulate(image, rng, camera)
        bands = clean[2::16][:3].reshape(-1, 3), image[2::16][:3].reshape(-1, 3)  # rows away from band edges
        np.testing.assert_allclose(*bands, atol=2e-4)
        display = np.linspace(0, 1, 101)
        np.testing.assert_allclose(tone_forward(tone_inverse(display, camera), camera), display, atol=1e-6)


def test_zero_noise_gives_the_target_up_to_8_bits_and_jpeg():
    image = photo()
    camera = replace(sample_camera(np.random.default_rng(2)).noiseless(), jpeg_quality=None)
    noisy, clean = simulate(image, np.random.default_rng(0), camera)
    np.testing.assert_array_equal(noisy, np.floor(clean * 255 + 0.5))
    noisy, clean = simulate(image, np.random.default_rng(0), replace(camera, jpeg_quality=95, subsampling="4:4:4"))
    assert psnr(noisy, clean * 255) > 38


def test_the_scene_target_keeps_what_the_mosaic_loses_and_the_noisy_image_is_the_same():
    """With a pipeline that leaves colours as they are, the scene target is the photo itself, while the capture
    target is demosaicked (softer); the noisy image does not depend on which target is asked for."""
    image = photo()
    identity = plain(sample_camera(np.random.default_rng(1)).noiseless(), tone="srgb", rgb_to_cam=np.eye(3),
                     gains=(1.0, 1.0, 1.0))
    _, capture = simulate(image, np.random.default_rng(0), identity)
    _, scene = simulate(image, np.random.default_rng(0), identity, scene_target=True)
    assert scene.shape == capture.shape and scene.dtype == np.float32
    np.testing.assert_allclose(scene, image, atol=2e-5)
    assert psnr(capture * 255, image * 255) < 40  # the mosaic lost detail that demosaicking does not give back
    for seed in range(3):  # any camera: the same noisy image, and the two targets agree but for fine detail
        noisy, capture = simulate(image, np.random.default_rng(seed))
        noisy_too, scene = simulate(image, np.random.default_rng(seed), scene_target=True)
        np.testing.assert_array_equal(noisy, noisy_too)
        assert psnr(capture * 255, scene * 255) > 25
        detail = lambda a: np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean()  # noqa: E731
        assert detail(scene) > detail(capture)


def test_noise_grows_with_iso():
    image = photo()
    stds = []
    for iso in (100, 400, 1600, 6400, 12800):
        camera = plain(sample_camera(np.random.default_rng(5), iso=iso))
        stds.append(float(noise_of(camera, image).std()))
    assert all(a < b for a, b in zip(stds, stds[1:])), stds
    assert stds[-1] > 4 * stds[0], stds


def test_shot_noise_is_poisson_in_electrons_and_read_noise_adds():
    """Raw variance = K x signal + read^2, in the Gaussian and the Poisson (few electrons) regime alike."""
    camera = replace(sample_camera(np.random.default_rng(0)), shot=0.01, read=0.002, row=0.0, column=0.0, prnu=0.0, bits=14)
    rng = np.random.default_rng(1)
    for level in (0.02, 0.1, 0.6):  # 2, 10 and 60 electrons
        raw = np.full((256, 256), level, np.float32)
        noisy = sensor_noise(raw, camera, rng)
        expected = np.sqrt(camera.shot * level + camera.read**2)
        assert abs(noisy.std() / expected - 1) < 0.05, (level, noisy.std(), expected)
        assert abs(noisy.mean() - level) < 0.01 * level
    electrons = sensor_noise(np.full((64, 64), 0.02, np.float32), replace(camera, read=0.0), rng) / camera.shot
    np.testing.assert_allclose(electrons, np.round(electrons), atol=0.01)  # whole photo-electrons


def test_row_noise_is_shared_along_rows():
    camera = replace(sample_camera(np.random.default_rng(0)), shot=0.0, read=0.001, row=0.01, column=0.0, prnu=0.0)
    noisy = sensor_noise(np.full((128, 128), 0.3, np.float32), camera, np.random.default_rng(0))
    assert noisy.mean(axis=1).std() > 5 * noisy.mean(axis=0).std()


def test_noise_is_signal_dependent_and_spatially_correlated():
    """Brighter patches carry more noise in linear light; demosaicking correlates neighbours, which the
    sensor's own noise is not."""
    camera = plain(sample_camera(np.random.default_rng(1), iso=3200), row=0.0, column=0.0, prnu=0.0, demosaic="bilinear")
    rng = np.random.default_rng(0)
    raws = [sensor_noise(np.full((128, 128), level, np.float32), camera, rng) for level in (0.05, 0.5)]
    assert raws[1].std() > 1.5 * raws[0].std()

    def neighbour_correlation(noise: np.ndarray) -> float:
        return float(np.corrcoef(noise[:, :-1].ravel(), noise[:, 1:].ravel())[0, 1])

    assert abs(neighbour_correlation(raws[1] - 0.5)) < 0.05
    grey = np.full((128, 128, 3), 0.5, np.float32)
    assert neighbour_correlation(noise_of(camera, grey)[..., 1]) > 0.2


def _sigma(image: np.ndarray) -> float:
    return measure_noise(torch.from_numpy(np.array(image, dtype=np.float64)).permute(2, 0, 1).contiguous()).sigma


@pytest.mark.slow
def test_simulated_noise_spans_the_real_sets(shared_data, one_thread):
    """ISO 100 to 12800 covers the noise measured on the real noisy photos, from PolyU's camera JPEGs to
    SIDD's phones: the clean references captured at ISO 100 are cleaner than PolyU's cleanest, and at
    12800 noisier than SIDD's noisiest (measured alike, lgbpn.noise)."""
    def every(folder: str, step: int) -> list:
        return sorted((shared_data / folder).glob("*"))[::step]

    real = [_sigma(read_image(p).pixels) for folder in ("polyu/noisy", "sidd_samples/noisy") for p in every(folder, 4)]
    cleans = [read_image(p).pixels[:128, :128].astype(np.float32) / 255 for folder in ("polyu/clean", "sidd_samples/clean")
              for p in every(folder, 6)]
    low, high = [], []
    for seed, clean in enumerate(cleans):
        low.append(_sigma(simulate(clean, np.random.default_rng(seed), sample_camera(np.random.default_rng(seed), iso=100))[0]))
        high.append(_sigma(simulate(clean, np.random.default_rng(seed), sample_camera(np.random.default_rng(seed), iso=12800))[0]))
    assert min(low) < min(real), (min(low), min(real))
    assert max(high) > max(real), (max(high), max(real))
