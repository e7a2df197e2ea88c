"""The demo's comparison figure: labelled panels with their PSNR, and crops that fill the panel width;
its model line, which says what runs."""

import numpy as np
import pytest

from lgbpn import Denoiser
from lgbpn.demo import comparison_figure
from lgbpn.nn.lowpass import DEFAULT_SIGMA
from lgbpn.nn.r3 import R3_PASSES

from .helpers import noisy_image, run_cli, tiny_model

SIZE, BOX = 512, (70, 160, 128)  # the demo photo's size; a 128-pixel box, enlarged 4x


def layout(figure):
    """(gap between panels, height of a text row), from the figure's size: 3 panels side by side,
    a text row above the panels and above the square crops."""
    gap, rest = divmod(figure.shape[1] - 3 * SIZE, 2)
    strip, rest2 = divmod(figure.shape[0] - 2 * SIZE, 2)
    assert rest == rest2 == 0 and gap > 0 and strip > 0, figure.shape
    return gap, strip


def test_panels_crops_and_labels():
    clean = noisy_image(SIZE, SIZE, seed=0)
    noisy = noisy_image(SIZE, SIZE, seed=1)
    denoised = ((clean.astype(np.uint16) + noisy) // 2).astype(np.uint8)
    figure = comparison_figure(noisy, denoised, clean, box=BOX)
    gap, strip = layout(figure)
    y, x, size = BOX
    for i, image in enumerate((noisy, denoised, clean)):
        left = i * (SIZE + gap)
        panel = figure[strip : strip + SIZE, left : left + SIZE]
        region = image[y : y + size, x : x + size]
        np.testing.assert_array_equal(panel[y : y + size, x : x + size], region)  # the frame lies outside
        assert tuple(panel[y - 1, x - 1]) != tuple(image[y - 1, x - 1])  # framed
        crop = figure[2 * strip + SIZE :, left : left + SIZE]
        np.testing.assert_array_equal(crop, region.repeat(4, 0).repeat(4, 1))  # pixel-exact, full width
        assert (figure[:strip, left : left + SIZE] < 100).any(), f"panel {i} has no label"

    # The labels carry the scores: a better denoised image changes its own label only.
    better = ((clean.astype(np.uint16) * 3 + noisy) // 4).astype(np.uint8)
    other = comparison_figure(noisy, better, clean, box=BOX)
    labels = [(slice(0, strip), slice(i * (SIZE + gap), i * (SIZE + gap) + SIZE)) for i in range(3)]
    assert np.array_equal(other[labels[0]], figure[labels[0]])
    assert not np.array_equal(other[labels[1]], figure[labels[1]])
    assert np.array_equal(other[labels[2]], figure[labels[2]])


def test_a_student_is_described_by_its_architecture_and_guard_never_r3():
    student = Denoiser.from_pretrained("lgbpn-fast")
    assert student.describe() == "unet-half, a distilled student (corrections learnt), guard on"
    assert Denoiser.from_pretrained("lgbpn-fast", coarse="auto").describe() == (
        "unet-half, a distilled student (corrections learnt), coarse pass where the noise is heavy, guard on")
    assert Denoiser.from_pretrained("lgbpn-fast", guard=False, r3=True, coarse=False).describe().endswith("learnt), guard off")
    assert Denoiser.from_pretrained("lgbpn-fast", ensemble=8, strength=1.5).describe().endswith(
        "guard on, self-ensemble of 8, strength 1.5")
    # A student distilled from uncorrected targets gets our corrections, still without R3.
    plain = Denoiser(tiny_model("unet-half"), blend=False, coarse=True).describe()
    assert plain == f"unet-half, low-frequency correction (sigma {DEFAULT_SIGMA:g}), coarse pass"
    assert not tiny_model("unet-half").corrections_learnt


def test_a_blind_spot_network_is_described_by_its_preset_r3_and_corrections():
    assert Denoiser(tiny_model("lgbpn-s")).describe() == (
        f"lgbpn-s, preset auto, R3 ({R3_PASSES} passes), low-frequency correction (sigma {DEFAULT_SIGMA:g}), residual Wiener blend")
    assert Denoiser(tiny_model("lgbpn-s"), preset="sidd", r3=False, blend=False, lowpass_sigma=None).describe() == (
        "lgbpn-s, preset sidd, no R3, no output corrections")
    assert Denoiser(tiny_model("apbsn"), r3=False).describe().startswith("apbsn, no R3, ")  # no presets


@pytest.mark.slow
def test_the_demo_says_what_ran(tmp_path):
    result = run_cli("demo", "-o", tmp_path, "--no-guard")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stderr.splitlines() if line.startswith("model: "))
    assert line.startswith("model: lgbpn-fast: unet-half, a distilled student (corrections learnt), guard off; ")
    assert "R3" not in line and (tmp_path / "comparison.png").exists()
