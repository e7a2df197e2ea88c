"""Every registered architecture keeps the model contract (models/base.py); blind-spot nets are blind."""

import copy
from importlib import resources

import numpy as np
import pytest
import torch
import torch.nn as nn

from lgbpn.errors import WeightsError
from lgbpn.models import ARCHITECTURES, DenoisingNetwork, build_model, register
from lgbpn.models.apbsn import APBSN
from lgbpn.models.base import INFERENCE_STAGES, STAGES
from lgbpn.models.lgbpn import GLOBAL_DILATION, LGBPN, LOCAL_DILATION, PRESETS
from lgbpn.models.student import UNetStudent
from lgbpn.nn.r3 import denoise_r3, r3_masks
from lgbpn.nn.transformer import DilatedChannelAttention
from lgbpn.weights import load_model, save_weights

from .conftest import load_parity
from .helpers import noisy_image

# Small settings per network class, for speed; a new architecture class adds its own here.
SMALL = {
    LGBPN: dict(base_ch=8, head_ch=4, local_blocks=1, global_blocks=1),
    APBSN: dict(base_ch=8, blocks=1),
    UNetStudent: dict(base_ch=4, middle_blocks=1),
}


def small_model(name: str, **overrides) -> DenoisingNetwork:
    torch.manual_seed(0)
    return build_model(name, **{**SMALL[ARCHITECTURES[name].build], **overrides})


def image(h: int, w: int, dtype=torch.float32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(h * 1000 + w)
    return (torch.rand(1, 3, h, w, generator=generator) * 255).to(dtype)


def every_pixel(x: torch.Tensor) -> list[tuple[int, int]]:
    return [(r, c) for r in range(x.shape[-2]) for c in range(x.shape[-1])]


def names_of(cls: type) -> list[str]:
    return [name for name, arch in ARCHITECTURES.items() if arch.build is cls]


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_contract(name, tmp_path):
    """Shapes at every stage down to the minimum size and at odd sizes, the stage following the
    mode, a save/load round trip with identical outputs; for an ordinary (not blind-spot) network,
    the stage changes nothing and R3 does not apply."""
    model = small_model(name)
    x = image(37, 42)

    path = tmp_path / "weights.safetensors"
    save_weights(model, path)
    loaded = load_model(path, arch=name)
    assert type(loaded) is type(model) and (loaded.arch_name, loaded.arch_config) == (name, model.arch_config)
    with torch.no_grad():
        for stage in STAGES:
            assert torch.equal(loaded(x, stage), model(x, stage)), stage

    with torch.no_grad():
        assert torch.equal(model.train()(x), model(x, "train"))
        assert torch.equal(model.eval()(x), model(x, "test"))
    with pytest.raises(ValueError, match="unknown stage"):
        model(x, "eval")
    if not model.blind_spot:
        masks = r3_masks((1, 3, *model.pad_for_inference(x).shape[-2:]), passes=2)
        with torch.no_grad():
            assert all(torch.equal(model(x, stage), model(x, "test")) for stage in STAGES)
            assert torch.equal(denoise_r3(model, x, masks), model(model.pad_for_inference(x), "test")[..., :37, :42])

    for preset in PRESETS:
        model.preset = preset
        side = model.min_size()
        for h, w in [(side, side), (side, side + 1), (side + 5, side + 2)]:
            x = image(h, w)
            with torch.no_grad():
                for stage in STAGES:
                    assert model(x, stage).shape == x.shape, (preset, stage, h, w)
                padded = model.pad_for_inference(x)
                masks = r3_masks((1, 3, *padded.shape[-2:]), passes=2)
                assert denoise_r3(model, x, masks).shape == x.shape, (preset, h, w)


def own_pixel_changes(fn, x: torch.Tensor, pixels: list[tuple[int, int]], delta: float = 50.0):
    """For each pixel p, when x[p] changes by `delta` in every channel: the largest change of the
    output at p, and the largest change of the whole output (a network that ignores its input
    would pass any blindness test). Both runs take batches of one shape, so a change is the
    input's doing, not a kernel's other summation order."""
    own, total = [], []
    with torch.no_grad():
        for chunk in range(0, len(pixels), 100):
            some = pixels[chunk : chunk + 100]
            batch = x.repeat(len(some), 1, 1, 1)
            base = fn(batch)
            for i, (r, c) in enumerate(some):
                batch[i, :, r, c] += delta
            change = (fn(batch) - base).abs()
            own += [change[i, :, r, c].max() for i, (r, c) in enumerate(some)]
            total += list(change.flatten(1).max(1).values)
    return torch.stack(own), torch.stack(total)


@pytest.mark.slow
@pytest.mark.parametrize("name", names_of(APBSN))
def test_apbsn_is_exactly_blind(name):
    """Exact: at every pixel p and every stage, the output at p does not depend on x[p] at all
    (it stays bit-identical).

    DBSNl's centre-masked convs are followed only by convs dilated past their reach, PD is a
    permutation, and every pad is zeros. That needs sides that are multiples of the stage's PD
    factor (5 in training, 2 at test; the refine stage has none): `forward` reflect-pads other sizes
    up to one, as the reference cannot take them, and a copy of p can then reach p near the bottom
    or right border. Inference pads with zeros (`pad_for_inference`), so its test pass is blind at
    any size.
    """
    model = small_model(name)
    x = image(10, 20)
    for stage in STAGES:
        own, total = own_pixel_changes(lambda z: model(z, stage), x, every_pixel(x))
        assert (own == 0).all() and (total > 0).all(), stage
    odd = image(11, 13)
    own, total = own_pixel_changes(lambda z: model(model.pad_for_inference(z), "test"), odd, every_pixel(odd))
    assert (own == 0).all() and (total > 0).all()


def hold_attention(model: nn.Module, x: torch.Tensor, stage: str, monkeypatch) -> None:
    """From now on, every channel-attention map of `model` is the one it computes for the single
    image `x` at `stage`, for every image of a batch."""
    layers = [m for m in model.modules() if isinstance(m, DilatedChannelAttention)]
    maps = {}
    for layer in layers:
        compute = layer.attention
        record = lambda q, k, layer=layer, compute=compute: maps.setdefault(layer, compute(q, k))  # noqa: E731
        monkeypatch.setattr(layer, "attention", record)
    with torch.no_grad():
        model(x, stage)
    for layer in layers:
        held = maps[layer]  # one map per sub-image of x; a batch of n images has n times as many
        replay = lambda q, k, held=held: held.repeat(q.shape[0] // held.shape[0], 1, 1, 1)  # noqa: E731
        monkeypatch.setattr(layer, "attention", replay)


def test_lgbpn_dilations_keep_pd_features_off_the_predicted_pixel():
    """models/lgbpn.py: after PD by f a body dilated by d mixes only features of pixels d*f*k away,
    and none of those reads the predicted pixel while d*f exceeds the masked conv's reach."""
    model = small_model("lgbpn")
    for preset in PRESETS:
        model.preset = preset
        for stage in STAGES:
            settings = model.branch_settings(stage)
            for (branch, factor, ratio), dilation in zip(settings, (LOCAL_DILATION, GLOBAL_DILATION)):
                assert dilation * factor > branch.dspmc.reach(ratio), (preset, stage, branch.dspmc.kernel_size)


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("name", names_of(LGBPN))
def test_lgbpn_is_blind_but_for_its_channel_attention(name, preset, monkeypatch):
    """LG-BPN is not exactly blind, and neither is the reference: the global branch's channel
    attention pools q and k over every position of a (sub-)image into maps that weigh every
    output, and the pixels whose masked-conv window holds p feed those maps.

    What holds exactly, at every stage and preset: with every attention map held at its value for
    the unperturbed image, the output at p does not depend on x[p] (it stays bit-identical), for p
    far enough from the border. Far enough is the PD factor times the reach of the branch bodies
    (global: 3 * (2 * blocks + 1) sub-image pixels, 4-5 x 9 pixels here); nearer the border the
    reflect pads can bring a copy of p back (models/lgbpn.py). With the maps live, p does reach
    its own output, but barely: see the next test.
    """
    model = small_model(name, preset=preset)
    x = image(96, 96)
    centre = [(46, 46), (47, 48), (48, 47), (49, 49)]  # every phase of PD by 2 and 4
    # The live maps do carry x[p] to the output at p: about 1e-5 here, near float32's round-off on
    # outputs of ~100 (it can round to exactly 0), so this check runs in float64.
    wide = copy.deepcopy(model).double()
    live, _ = own_pixel_changes(lambda z: wide(z, "test"), image(96, 96, torch.float64), centre)
    assert (live > 0).any()
    for stage in STAGES if preset == "sidd" else INFERENCE_STAGES:  # training has no preset
        with monkeypatch.context() as patch:
            hold_attention(model, x, stage, patch)
            held, total = own_pixel_changes(lambda z: model(z, stage), x, centre)
        assert (held == 0).all() and (total > 0).all(), stage


@pytest.mark.slow
def test_shipped_lgbpn_s_leaks_a_pixel_to_itself_only_negligibly():
    """Through the attention maps, x[p] weighs ~3e-7 of what all other pixels together weigh in
    the output at p (shipped lgbpn-s, a 96x96 image, every stage; the maps pool more positions,
    and p counts for less, in larger images)."""
    model = load_model(resources.files("lgbpn") / "pretrained" / "lgbpn-s.safetensors")
    noisy = torch.from_numpy(noisy_image(96, 96).astype(np.float32)).permute(2, 0, 1)[None]
    for stage in STAGES:
        x = noisy.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(model(x, stage)[0, :, 48, 48].sum(), x)
        weight = grad[0].abs().sum(0)
        own = weight[48, 48]
        assert 0 < own < 1e-4 * (weight.sum() - own), stage


def test_every_blind_spot_architecture_has_a_blindness_test():
    for name, arch in ARCHITECTURES.items():
        assert not arch.build.blind_spot or arch.build in (APBSN, LGBPN), name


def test_a_name_is_registered_once():
    before = dict(ARCHITECTURES)
    with pytest.raises(ValueError, match="'lgbpn' is already registered"):
        register("lgbpn", "again")(LGBPN)
    with pytest.raises(TypeError, match="must subclass DenoisingNetwork"):
        register("conv", "not a denoising network")(nn.Conv2d)
    assert ARCHITECTURES == before


@pytest.mark.parametrize("checkpoint,full,slim", [
    ("state_dict_bf16.pt", "lgbpn", "lgbpn-s"),
    ("apbsn/state_dict_bf16.pt", "apbsn", "apbsn-s"),
])
def test_a_reference_checkpoint_refuses_another_arch(tmp_path, checkpoint, full, slim):
    """The authors' checkpoints hold the full network; `--arch lgbpn-s` used to build `lgbpn`."""
    path = tmp_path / "reference.pth"
    torch.save(load_parity(checkpoint), path)
    with pytest.raises(WeightsError) as refused:
        load_model(path, arch=slim)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{path}: ") and f"--arch {full}, not {slim}" in message


@pytest.mark.parametrize("name", names_of(UNetStudent))
def test_student_context_bounds_where_a_pixel_reaches(name):
    """Change one input pixel at every phase of the pooling grids: no output pixel farther than
    context() changes, and some pixel near that distance does (the bound is not loose)."""
    model = small_model(name, middle_blocks=2).eval()
    x = image(160, 160)
    reach = 0
    with torch.no_grad():
        base = model(x)
        for phase in range(model.alignment()):
            changed = x.clone()
            changed[..., 72 + phase, 72 + phase] += 60
            rows, cols = torch.nonzero((model(changed) - base).abs().amax(1)[0] > 0, as_tuple=True)
            reach = max(reach, (rows - 72 - phase).abs().max().item(), (cols - 72 - phase).abs().max().item())
    assert model.context() - model.alignment() <= reach <= model.context()


def test_the_torch_free_preset_choices_name_every_lgbpn_preset():
    from lgbpn.options import PRESET_CHOICES

    assert set(PRESET_CHOICES) == {"auto", *PRESETS}  # the CLI lists them without importing torch


def test_a_noise_aware_student_hears_each_whole_images_measured_noise(tmp_path):
    """Its output follows the level it is told; tiles hear the whole image's level, so tiling stays exact;
    and the level survives a save and load with the weights' settings."""
    from lgbpn.noise import noise_levels
    from lgbpn.tiling import denoise_tiled

    from .helpers import noisy_scene

    model = small_model("unet-half", noise_aware=True).eval()
    with torch.no_grad():
        model.inp.weight[:, -1] += 0.5  # the level's input weights: untrained ones may be ~0
    x = torch.from_numpy(noisy_scene(8, 96)).permute(2, 0, 1).float()[None]
    with pytest.raises(RuntimeError, match="noise level"):
        model(x)
    whole = denoise_tiled(model, x, precision="fp32", tile=96)
    tiled = denoise_tiled(model, x, precision="fp32", tile=32, overlap=model.context())
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-4)
    with torch.no_grad():
        model.noise_level = noise_levels(x)
        assert 6 < float(model.noise_level[0]) < 10  # the scene's noise, measured
        told = model(x)
        model.noise_level = model.noise_level * 3
        louder = model(x)
    torch.testing.assert_close(whole, told, rtol=0, atol=1e-4)
    assert (louder - told).abs().mean() > 0.1 and model.noise_level is not None
    save_weights(model, tmp_path / "aware.safetensors")
    assert load_model(tmp_path / "aware.safetensors").noise_aware
