"""A distilled student's own adaptation route (adapt.py): Recorrupted-to-Recorrupted pairs of the photos."""

import torch

from lgbpn.adapt import recorrupted_pairs, self_adapt_model, smallest_to_adapt

from .helpers import tiny_model


def test_recorrupted_pairs_add_and_subtract_a_noise_sample_from_elsewhere_in_the_same_photo():
    """Input y + s z and target y - s z, z the residual taken at least a crop away: never the pixel's own noise."""
    h, w, crop, scale = 48, 40, 16, 1.5
    photos = [torch.arange(3 * h * w, dtype=torch.float64).reshape(3, h, w)]  # every pixel tells where it is
    residuals = [-torch.arange(3 * h * w, dtype=torch.float64).reshape(3, h, w) / 7]
    inputs, targets = recorrupted_pairs(photos, residuals, [scale], crop, 32, torch.Generator().manual_seed(0))
    assert inputs.shape == targets.shape == (32, 3, crop, crop)
    for x, t in zip(inputs, targets):
        y, z = (x + t) / 2, (x - t) / (2 * scale)
        top, left = divmod(int(y[0, 0, 0]), w)
        torch.testing.assert_close(y, photos[0][:, top : top + crop, left : left + crop])  # a crop of the photo
        source = (-7 * z[0, 0, 0]).round().long().item()  # where its noise sample comes from
        dy, dx = (top - source // w) % h, (left - source % w) % w
        assert crop <= dy <= h - crop and crop <= dx <= w - crop  # moved by a crop at least, both ways round
        torch.testing.assert_close(z, torch.roll(residuals[0], (dy, dx), (-2, -1))[:, top : top + crop, left : left + crop])


def test_self_adaptation_fine_tunes_the_student_in_place_on_the_photos_alone():
    model = tiny_model("unet")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    side = smallest_to_adapt(model)
    photos = [torch.rand(3, side, side + 8) * 255, torch.rand(3, side + 16, side) * 255]
    losses = self_adapt_model(model, photos, steps=3)
    assert len(losses) == 3 and all(loss > 0 for loss in losses)
    assert not model.training  # ready to denoise
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
