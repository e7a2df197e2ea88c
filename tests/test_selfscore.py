"""The self-supervised score (selfscore.py), choosing on held-out noisy crops, and keeping a student's base."""

import numpy as np
import pytest
import torch

from lgbpn.data.formats import Sample
from lgbpn.denoiser import Denoiser
from lgbpn.nn.lowpass import gaussian_blur
from lgbpn.selfscore import (
    MARGIN,
    NOISE_SCALE,
    SCALE_RANGE,
    SHARE_FACTOR,
    blind_spot_error,
    keep_base_mask,
    noise_samples,
    sample_scale,
    view_error,
)
from lgbpn.train.trainer import hold_out
from lgbpn.weights import load_model, save_weights

from .helpers import noisy_image, tiny_model


def _scene(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A clean textured image and a noisy one with spatially correlated noise (sigma ~10), 0..255."""
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    clean = (128 + 60 * torch.sin(yy / 9) * torch.cos(xx / 6)).expand(1, 3, 128, 128)
    noise = gaussian_blur(torch.randn(1, 3, 128, 128, generator=gen), 0.7)
    return clean, clean + noise * (10 / noise.std())


def test_the_noisy_view_error_ranks_denoisers_as_their_error_to_the_clean_image():
    clean, noisy = _scene()
    denoisers = {"identity": lambda v: v, "light blur": lambda v: gaussian_blur(v, 0.8), "blur": lambda v: gaussian_blur(v, 1.5),
                 "heavy blur": lambda v: gaussian_blur(v, 4.0)}
    samples = noise_samples(noisy, gaussian_blur(noisy, 1.5), scale=1.0)  # a blur's residual holds the whole noise
    assert len(samples) == 2 and all(z.shape == noisy.shape for z in samples)
    true = {name: float((f(noisy) - clean).square().mean()) for name, f in denoisers.items()}
    scored = {name: float(view_error(f, noisy, samples).mean()) for name, f in denoisers.items()}
    assert sorted(true, key=true.get) == sorted(scored, key=scored.get)
    assert len(set(sorted(true, key=true.get)[:2]) & {"light blur", "blur"}) == 2  # not a trivial order


@pytest.mark.parametrize("scale, keeper_ranked_first", [(1.0, True), (NOISE_SCALE, False), (None, False)])
def test_a_residual_weaker_than_the_noise_is_scaled_so_that_keeping_noise_does_not_pay(scale, keeper_ranked_first):
    """A reference that leaves a third of the noise gives samples with two thirds of its amplitude: unscaled, the
    views' noises are correlated and a denoiser that keeps a share of its input scores better than one that does
    not, though it is further from the clean image; NOISE_SCALE (1.5) restores the true order, and so does the
    default, each image's own scale (sample_scale)."""
    clean, noisy = _scene(2)
    reference = clean + (noisy - clean) / 3
    denoise = lambda v: gaussian_blur(v, 1.5)  # noqa: E731
    keeper = lambda v: 0.75 * denoise(v) + 0.25 * v  # noqa: E731
    assert float((keeper(noisy) - clean).square().mean()) > 1.3 * float((denoise(noisy) - clean).square().mean())
    samples = noise_samples(noisy, reference, scale)
    scored = [float(view_error(f, noisy, samples).mean()) for f in (denoise, keeper)]
    assert (scored[1] < scored[0]) == keeper_ranked_first


def test_the_sample_scale_follows_the_share_of_the_noise_the_residual_holds():
    gen = torch.Generator().manual_seed(3)
    noise = gaussian_blur(torch.randn(1, 3, 128, 128, generator=gen), 0.7)
    noise = noise * (10 / noise.std())
    noisy = 128 + torch.linspace(-40, 40, 128).expand(1, 3, 128, 128) + noise  # flat enough to measure the noise on
    whole, two_thirds = (sample_scale(noisy[0], share * noise[0]) for share in (1.0, 2 / 3))
    assert whole == pytest.approx(SHARE_FACTOR, rel=0.1) and two_thirds == pytest.approx(1.5 * whole, rel=0.05)
    assert sample_scale(noisy[0], 0.01 * noise[0]) == SCALE_RANGE[1]  # a reference that removes nearly nothing: bounded
    assert sample_scale(noisy[0, :, :20, :20], noise[0, :, :20, :20]) == NOISE_SCALE  # too small to measure


def test_a_blind_spot_networks_own_error_is_its_error_plus_the_noise():
    clean, noisy = _scene(1)
    mean_of_neighbours = lambda v: (torch.roll(v, 3, -1) + torch.roll(v, -3, -1)) / 2  # noqa: E731 (blind, noise 0.7 px)
    own = float(blind_spot_error(mean_of_neighbours, noisy).mean())
    true = float((mean_of_neighbours(noisy) - clean).square().mean())
    assert own == pytest.approx(true + float((noisy - clean).square().mean()), rel=0.1)


def test_the_base_is_kept_in_the_regions_where_it_scores_better():
    error = torch.ones(1, 1, 256, 256)
    base_error = torch.ones(1, 1, 256, 256)
    base_error[..., :128] = 0.5  # the base is better in the left half ...
    base_error[..., 128:] = 2.0  # ... and worse in the right half
    keep = keep_base_mask(error, base_error, region=128)
    assert torch.all(keep[..., :120] == 1) and torch.all(keep[..., 136:] == 0)
    assert keep.min() >= 0 and keep.max() <= 1


@pytest.mark.parametrize("adapted_share, kept", [(1 - MARGIN / 2, 1.0), (1 - 2 * MARGIN, 0.0)])
def test_the_adapted_output_must_score_better_by_the_margin(adapted_share, kept):
    """A difference within the score's noise (under MARGIN, 0.5% of the error) keeps the base; a larger one does not."""
    base_error = torch.ones(1, 1, 100, 100)
    keep = keep_base_mask(base_error * adapted_share, base_error)
    assert torch.all(keep == kept)


def test_held_out_crops_are_the_bottom_rows_and_are_not_trained_on():
    tall, short = noisy_image(96, 40, seed=1), noisy_image(40, 40, seed=2)
    samples = [Sample("tall", lambda: tall, None), Sample("short", lambda: short, None)]
    kept, crops = hold_out(samples, 2, 32)
    assert len(crops) == 1 and np.array_equal(crops[0], tall[64:, 4:36])
    assert np.array_equal(kept[0].noisy(), tall[:64]) and kept[1].noisy() is short  # too short to hold out from


def _identity_student():
    model = tiny_model("unet")
    with torch.no_grad():
        model.out.weight.zero_()
        model.out.bias.zero_()  # a residual network: it now gives its input back
    return model


def _adapted_with_identity_base(folder):
    """An adapted student (random weights: far worse than the input everywhere) whose base is the identity."""
    save_weights(_identity_student(), folder / "base.safetensors")
    adapted = tiny_model("unet")
    adapted.base = str(folder / "base.safetensors")
    save_weights(adapted, folder / "adapted.safetensors")
    return load_model(folder / "adapted.safetensors")


def test_an_adapted_student_keeps_its_bases_output_where_that_scores_better(tmp_path, caplog):
    loaded = _adapted_with_identity_base(tmp_path)
    assert loaded.base == str(tmp_path / "base.safetensors")
    image = noisy_image(64, 64)
    options = dict(r3=False, lowpass_sigma=None, blend=False, guard=False, coarse=False)  # the network alone
    with caplog.at_level("INFO", logger="lgbpn"):
        out = Denoiser(loaded, **options)(image)
    np.testing.assert_array_equal(out, image)  # the base (the identity) everywhere
    assert "kept on 100% of the image" in caplog.text
    assert not np.array_equal(Denoiser(loaded, keep_base=False, **options)(image), image)  # opted out


@pytest.mark.parametrize("base_kept", [True, False])
def test_keep_base_runs_the_self_ensemble_only_for_the_outputs_it_gives(tmp_path, monkeypatch, base_kept):
    """The views and the base's reference pass run each network once; the base's self-ensemble runs only where
    the base is kept."""
    import lgbpn.denoiser

    ensembles = []
    real = lgbpn.denoiser.denoise_tiled

    def recording(model, x, options, **kwargs):
        ensembles.append(options.ensemble)
        return real(model, x, options, **kwargs)

    if base_kept:  # a random adapted student, the identity as its base
        adapted = _adapted_with_identity_base(tmp_path)
    else:  # the identity adapted from a random base
        save_weights(tiny_model("unet"), tmp_path / "base.safetensors")
        adapted = _identity_student()
        adapted.base = str(tmp_path / "base.safetensors")
    monkeypatch.setattr(lgbpn.denoiser, "denoise_tiled", recording)
    options = dict(r3=False, lowpass_sigma=None, blend=False, guard=False, coarse=False, ensemble=8)
    out = Denoiser(adapted, **options)(noisy_image(64, 64))
    np.testing.assert_array_equal(out, noisy_image(64, 64))  # the identity, whichever side it is on
    # the adapted output with the ensemble; the base once, and each network on the two second views once
    assert sorted(ensembles) == [1, 1, 1, 1, 1, 8] + [8] * base_kept
