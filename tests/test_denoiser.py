"""The Python API and weights loading (ours and the reference's checkpoints)."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from lgbpn.denoiser import Denoiser, pretrained_names
from lgbpn.errors import WeightsError
from lgbpn.weights import load_model, save_weights

from .conftest import load_parity
from .helpers import noisy_image, noisy_scene, tiny_model, tiny_weights


@pytest.fixture(scope="module")
def denoiser():
    return Denoiser(tiny_model(), r3=True, seed=1)


def test_numpy_types_round_trip(denoiser):
    rgb = noisy_image(33, 41)
    out = denoiser(rgb)
    assert out.dtype == np.uint8 and out.shape == rgb.shape and not np.array_equal(out, rgb)
    grey = noisy_image(33, 41, channels=1)[..., 0]
    assert denoiser(grey).shape == grey.shape
    deep = noisy_image(20, 24, dtype=np.uint16)
    out16 = denoiser(deep)
    assert out16.dtype == np.uint16 and out16.max() > 255
    flt = noisy_image(20, 24, dtype=np.float32)
    out_f = denoiser(flt)
    assert out_f.dtype == np.float32 and 0 <= out_f.mean() <= 1.0
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 77, np.uint8)])
    out_a = denoiser(rgba)
    assert np.all(out_a[..., 3] == 77) and np.array_equal(out_a[..., :3], out)


def test_tensor_in_tensor_out(denoiser):
    x = torch.from_numpy(noisy_image(24, 24, dtype=np.float32)).permute(2, 0, 1)
    y = denoiser(x)
    assert isinstance(y, torch.Tensor) and y.shape == x.shape and y.dtype == x.dtype
    batch = denoiser(torch.stack([x, x]))
    assert batch.shape == (2, 3, 24, 24)
    torch.testing.assert_close(batch[0], y)


def test_our_weights_round_trip(tmp_path):
    model = tiny_model("apbsn")
    path = tmp_path / "m.safetensors"
    save_weights(model, path, note="test")
    loaded = load_model(path)
    assert loaded.arch_name == "apbsn" and loaded.arch_config == model.arch_config
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(WeightsError, match="apbsn, not lgbpn"):
        load_model(path, arch="lgbpn")


def test_reference_checkpoint_loads_and_reproduces(tmp_path):
    """A reference training checkpoint (pickle, DataParallel names) loads safely and gives its outputs."""
    state = {f"module.{k}": v.float() for k, v in load_parity("state_dict_bf16.pt").items()}
    path = tmp_path / "APBSN_SIDD.pth"
    torch.save({"epoch": 20, "model_weight": {"denoiser": state}}, path)
    model = Denoiser.from_weights(path, arch="lgbpn").model
    x = load_parity("inputs.pt")["x_test"]
    with torch.inference_mode():
        out = model(x, stage="test")
    torch.testing.assert_close(out, load_parity("model_test_outputs.pt")["out_test_noR3"], atol=1e-4, rtol=0)


def test_wrong_channel_count_is_a_weights_error(tmp_path):
    path = tiny_weights(tmp_path / "grey.safetensors", in_ch=1)
    model = load_model(path)
    assert model.arch_config["in_ch"] == 1
    bad = tmp_path / "bad.safetensors"
    save_weights(tiny_model(), bad)
    with pytest.raises(WeightsError, match="do not fit"):
        load_model(bad, base_ch=16)


def test_shipped_models_load():
    names = pretrained_names()
    if not names:
        pytest.skip("no shipped weights in this checkout")
    for name in names:
        d = Denoiser.from_pretrained(name, r3=False)
        assert d(noisy_image(40, 40)).shape == (40, 40, 3)
    with pytest.raises(WeightsError, match="no shipped model"):
        Denoiser.from_pretrained("no-such-model")


def test_corrections_compose_on_the_network_output():
    """Wiener blend of the low-frequency-corrected output; both off = the network's own output."""
    from lgbpn.nn.lowpass import restore_low_frequencies
    from lgbpn.nn.wiener import residual_wiener_blend
    from lgbpn.tiling import denoise_tiled

    model = tiny_model()
    x = torch.from_numpy(noisy_image(36, 44).astype(np.float32)).permute(2, 0, 1)[None]
    with torch.inference_mode():
        raw = denoise_tiled(model, x, r3=False)
    plain = Denoiser(model, r3=False, lowpass_sigma=None, blend=False).denoise_batch(x)
    torch.testing.assert_close(plain, raw)
    both = Denoiser(model, r3=False, blend=True).denoise_batch(x)
    torch.testing.assert_close(both, residual_wiener_blend(restore_low_frequencies(raw, x), x))
    assert not torch.allclose(both, restore_low_frequencies(raw, x))


def test_a_student_gets_its_guard_and_not_the_teachers_corrections():
    from lgbpn.nn.wiener import residual_guard
    from lgbpn.tiling import denoise_tiled

    student = tiny_model("unet")
    student.corrections_learnt = True
    # A student that smooths: it erases the fine checkerboard on the right half along with the noise.
    student.forward = lambda x, **_: torch.nn.functional.avg_pool2d(x, 5, stride=1, padding=2, count_include_pad=False)
    pixels = noisy_scene(3, 64).astype(np.float32)
    pixels[:, 32:] += 30 * ((np.indices((64, 32)).sum(0) % 2) * 2 - 1)[..., None]
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None]
    with torch.inference_mode():
        raw = denoise_tiled(student, x, r3=False)
    guarded = Denoiser(student).denoise_batch(x)
    torch.testing.assert_close(guarded, residual_guard(raw, x))
    torch.testing.assert_close(Denoiser(student, guard=False).denoise_batch(x), raw)
    assert (guarded - raw)[..., 36:].abs().mean() > 10  # the checkerboard is given back
    teacher = tiny_model()  # a blind-spot net: its own corrections, never the guard
    paper = {"r3": False, "lowpass_sigma": None, "blend": False}
    with torch.inference_mode():
        torch.testing.assert_close(Denoiser(teacher, **paper).denoise_batch(x), denoise_tiled(teacher, x, r3=False))


def test_the_auto_blend_runs_on_light_noise_only_per_image():
    from lgbpn.corrections import apply_corrections
    from lgbpn.nn.lowpass import restore_low_frequencies
    from lgbpn.nn.wiener import residual_wiener_blend
    from lgbpn.options import InferenceOptions

    assert InferenceOptions().blend is True and InferenceOptions(blend="auto").blend == "auto"
    noisy = torch.stack([torch.from_numpy(noisy_scene(sigma, 96)).permute(2, 0, 1).float() for sigma in (2, 20)])
    denoised = torch.nn.functional.avg_pool2d(noisy, 5, stride=1, padding=2, count_include_pad=False)
    corrected = restore_low_frequencies(denoised, noisy)
    out = apply_corrections(denoised, noisy, blend="auto")
    torch.testing.assert_close(out[:1], residual_wiener_blend(corrected[:1], noisy[:1]))  # light noise: blended
    torch.testing.assert_close(out[1:], corrected[1:])  # heavy noise: the blend would give noise back
    assert not torch.allclose(out[:1], corrected[:1])
    torch.testing.assert_close(apply_corrections(denoised, noisy), residual_wiener_blend(corrected, noisy))  # the default


def test_a_model_still_trains_after_denoising():
    """--adapt trains the model that inference prepared (channels-last) and ran in inference mode."""
    from lgbpn.train.trainer import self_supervised_loss

    model = tiny_model()
    Denoiser(model, r3=True)(noisy_image(40, 40))
    model.train()
    x = torch.from_numpy(noisy_image(40, 40).astype(np.float32)).permute(2, 0, 1)[None]
    self_supervised_loss(model, x).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_adapting_a_student_adapts_its_blind_spot_teacher(tmp_path, caplog):
    """--adapt trains on the noisy images themselves: only a blind-spot network can learn from that."""
    teacher_path = tiny_weights(tmp_path / "teacher.safetensors")
    student = tiny_model("unet")
    student.teacher, student.noise_sigma_max = str(teacher_path), 10.0
    save_weights(student, tmp_path / "student.safetensors")
    denoiser = Denoiser.from_weights(tmp_path / "student.safetensors", r3=False)
    with caplog.at_level("INFO", logger="lgbpn"):
        adaptable = denoiser.blind_spot()
    assert adaptable.model.blind_spot and adaptable.options == denoiser.options and "teacher" in caplog.text
    assert denoiser.blind_spot() is adaptable  # loaded once
    assert adaptable.blind_spot() is adaptable
    with pytest.raises(WeightsError, match="neither a blind-spot network nor a student with a teacher"):
        Denoiser(tiny_model("unet")).blind_spot()


def test_package_exports_the_api():
    import importlib.metadata

    import lgbpn
    from lgbpn.models import build_model
    from lgbpn.options import InferenceOptions

    assert lgbpn.Denoiser is Denoiser and lgbpn.build_model is build_model and lgbpn.InferenceOptions is InferenceOptions
    assert lgbpn.__version__ == importlib.metadata.version("lgbpn")


@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:0", "cuda:12", "mps", "xpu:1", "meta", "cpu:1", "gpu", "gpu0",
                                    "CUDA", "cuda:", "cuda:x", "cuda:-1", "cuda:01", " cpu", "cpu ", ""])
def test_device_names_checked_as_torch_checks_them(device):
    """Options check the device without importing torch (the command line decodes its first photo while torch
    loads); what they accept is what torch.device accepts."""
    from lgbpn.options import DEVICE_TYPES, InferenceOptions, OptionError

    try:
        torch.device(device)
    except RuntimeError:
        with pytest.raises(OptionError, match="^device: "):
            InferenceOptions(device=device)
    else:
        assert InferenceOptions(device=device).device == device
    for kind in DEVICE_TYPES:
        torch.device(kind)


def test_options_are_made_without_torch():
    code = "import sys, lgbpn.cli, lgbpn.batch; from lgbpn.options import InferenceOptions as O; O(); sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize("option, value", [
    ("tile", 0), ("tile", 12.5), ("overlap", -1), ("passes", 0), ("seed", -1), ("seed", 2**64), ("prob", 0.0),
    ("prob", 1.5), ("lowpass_sigma", 0), ("lowpass_sigma", float("nan")), ("r3", 1), ("guard", 1), ("blend", "yes"),
    ("precision", "fp16"), ("device", "gpu0"), ("colour", True), ("preset", "mars"), ("strength", -0.1),
    ("strength", 2.5), ("strength", float("nan")), ("strength", True), ("coarse", "on"), ("ensemble", 3),
    ("ensemble", True), ("ensemble", 16),
])
def test_options_refuse_bad_values_naming_the_option(option, value):
    from lgbpn.options import InferenceOptions, OptionError

    with pytest.raises(OptionError, match=f"^{option}: ") as caught:
        InferenceOptions().replace(**{option: value})
    assert caught.value.option == option


def test_options_are_frozen_and_keywords_build_the_same_denoiser():
    import dataclasses

    from lgbpn.options import InferenceOptions

    options = InferenceOptions(r3=False, tile=96, blend=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.tile = 48
    model = tiny_model()
    assert Denoiser(model, options, seed=5).options == options.replace(seed=5)
    image = noisy_image(30, 34)
    np.testing.assert_array_equal(Denoiser(model, options)(image), Denoiser(model, r3=False, tile=96, blend=False)(image))


def test_tensor_path_equals_the_numpy_path_and_stays_in_torch(denoiser, monkeypatch):
    rgb, grey = noisy_image(26, 30), noisy_image(26, 30, channels=1, seed=4)
    rgba = np.dstack([rgb, np.tile(np.arange(30, dtype=np.uint8) * 8, (26, 1))])
    grey_alpha = np.dstack([grey, rgba[..., 3:]])
    cases = [rgb, rgba, grey, grey_alpha, noisy_image(26, 30, dtype=np.float32),
             noisy_image(26, 30, channels=1, dtype=np.float64), noisy_image(26, 30, dtype=np.uint16)]
    expected = [denoiser(image) for image in cases]

    def no_numpy(*args, **kwargs):
        raise AssertionError("the tensor path went through numpy")

    monkeypatch.setattr(torch.Tensor, "numpy", no_numpy)
    results = []
    for image in cases:
        chw = torch.from_numpy(image).permute(2, 0, 1)
        results.append((chw, denoiser(chw), denoiser(torch.stack([chw, chw.flip(-1)])), denoiser(chw.flip(-1))))
    monkeypatch.undo()
    for want, (chw, one, batch, flipped) in zip(expected, results):
        assert one.dtype == chw.dtype and one.shape == chw.shape and not one.is_inference()
        np.testing.assert_array_equal(one.permute(1, 2, 0).numpy(), want)  # alpha included
        assert torch.equal(batch[0], one) and torch.equal(batch[1], flipped)  # each image as if alone


def test_tensor_path_refuses_what_it_cannot_denoise(denoiser):
    from lgbpn.errors import InputError

    for bad in (torch.zeros(3, 8, 8, dtype=torch.int32), torch.zeros(5, 8, 8), torch.zeros(0, 3, 8, 8),
                torch.full((3, 8, 8), float("nan"))):
        with pytest.raises(InputError):
            denoiser(bad)


def test_bf16_runs_close_to_fp32_and_auto_picks_it_only_on_native_units(monkeypatch):
    from lgbpn import precision
    from lgbpn.tiling import denoise_tiled

    model = tiny_model().eval()
    x = torch.from_numpy(noisy_image(36, 40).astype(np.float32)).permute(2, 0, 1)[None]
    fp32 = denoise_tiled(model, x, r3=True, passes=2, precision="fp32")
    bf16 = denoise_tiled(model, x, r3=True, passes=2, precision="bf16")
    assert bf16.dtype == torch.float32 and not torch.equal(bf16, fp32) and not model._forward_hooks
    assert 10 * torch.log10(255**2 / ((bf16 - fp32) ** 2).mean()) > 35
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": False)
    assert torch.equal(denoise_tiled(model, x, r3=True, passes=2), fp32)
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": True)
    assert torch.equal(denoise_tiled(model, x, r3=True, passes=2), bf16)



@pytest.mark.parametrize("sigma, corrected, expected", [(2, False, "light"), (20, False, "sidd"), (2, True, "sidd")])
def test_auto_preset_follows_the_measured_noise(sigma, corrected, expected):
    """The network alone gets the small blind patch on weak noise; under the corrections, or on heavy noise, sidd."""
    model = tiny_model()
    corrections = {} if corrected else dict(lowpass_sigma=None, blend=False)
    image = noisy_scene(sigma)
    out = Denoiser(model, r3=False, **corrections)(image)
    assert model.preset == expected
    np.testing.assert_array_equal(out, Denoiser(tiny_model(), r3=False, preset=expected, **corrections)(image))


def test_an_explicit_preset_is_kept_and_networks_without_presets_ignore_it(tmp_path):
    weights = tiny_weights(tmp_path / "w.safetensors")
    denoiser = Denoiser.from_weights(weights, preset="dnd", r3=False, lowpass_sigma=None, blend=False)
    assert denoiser.options.preset == "dnd"
    denoiser(noisy_scene(2))
    assert denoiser.model.preset == "dnd"
    apbsn = tiny_model("apbsn")
    Denoiser(apbsn, r3=False, preset="light")(noisy_scene(2, 40))
    assert apbsn.preset == "sidd" and not apbsn.presets


def test_fast_is_an_alias_of_the_shipped_student(tmp_path, monkeypatch):
    import lgbpn.denoiser as api

    tiny_weights(tmp_path / "lgbpn-fast.safetensors", "unet")
    monkeypatch.setattr(api, "pretrained_dir", lambda: tmp_path)
    assert Denoiser.from_pretrained("fast").model.arch_name == "unet"
    assert api.pretrained_path("fast") == api.pretrained_path("lgbpn-fast") == tmp_path / "lgbpn-fast.safetensors"
