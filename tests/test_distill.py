"""Distillation: teacher settings, the on-disk target cache, aligned crops, a student trained end to end."""

from pathlib import Path

import numpy as np
import pytest
import torch

from lgbpn.data.crops import NoisyCrops, fine_pattern
from lgbpn.data.formats import Sample
from lgbpn.denoiser import pretrained_path
from lgbpn.errors import ConfigError
from lgbpn.train.config import make_config
from lgbpn.train.distill import FIXED_POINT, TargetCache, TeacherSetting
from lgbpn.train.trainer import train
from lgbpn.weights import load_model

from .helpers import noisy_image, noisy_scene, tiny_model

STUDENT = dict(base_ch=4, middle_blocks=1)


def test_teacher_settings_parse_and_print():
    assert TeacherSetting.parse("sidd") == TeacherSetting("sidd", r3=False, corrections=True)
    assert TeacherSetting.parse("dnd:r3:raw") == TeacherSetting("dnd", r3=True, corrections=False)
    assert str(TeacherSetting.parse("dnd:raw:r3")) == "dnd:r3:raw"
    assert TeacherSetting.parse("sidd:lightblend") == TeacherSetting("sidd", light_blend=True)
    assert str(TeacherSetting.parse("sidd:lightblend:r3")) == "sidd:r3:lightblend"
    for bad in ("", "sidd:fast", ":r3", "sidd:raw:lightblend"):
        with pytest.raises(ConfigError, match="PRESET"):
            TeacherSetting.parse(bad)


def test_target_cache_computes_once_and_keys_on_teacher_setting_and_image(tmp_path, monkeypatch):
    teacher = tiny_model("lgbpn-s")
    image = noisy_image(40, 44)
    cache = TargetCache(tmp_path, teacher, [TeacherSetting("sidd"), TeacherSetting("dnd", corrections=False)])
    first = cache.targets(image)
    assert first.shape == (2, 40, 44, 3) and first.dtype == np.float32
    assert len(list(tmp_path.glob("*.npy"))) == 2 and not list(tmp_path.glob(".*"))  # no temporary left
    # The stored targets are the teacher's output to 1/256 of a grey level, read back without the teacher.
    monkeypatch.setattr(TargetCache, "_run_teacher", lambda *a: pytest.fail("recomputed a cached target"))
    np.testing.assert_array_equal(cache.targets(image), first)
    assert np.abs(first[0] - first[1]).max() > 0.1  # two settings, two targets
    monkeypatch.undo()

    other_image = image.copy()
    other_image[0, 0, 0] ^= 1
    assert cache.path(TeacherSetting("sidd"), other_image) != cache.path(TeacherSetting("sidd"), image)
    with torch.no_grad():
        teacher.tail[-1].weight *= 2  # a changed teacher never meets its predecessor's targets
    changed = TargetCache(tmp_path, teacher, [TeacherSetting("sidd")])
    assert changed.path(TeacherSetting("sidd"), image) != cache.path(TeacherSetting("sidd"), image)
    assert np.abs(changed.targets(image)[0] - first[0]).mean() > 0.01  # recomputed, not read back


def test_sharpened_targets_add_a_share_of_the_students_second_pass_and_key_on_the_student(tmp_path, monkeypatch):
    from lgbpn import Denoiser

    teacher, image = tiny_model("lgbpn-s"), noisy_image(40, 44)
    student = Denoiser(tiny_model("unet-half").eval(), guard=False, coarse=True, teacher_fallback=False, precision="fp32")
    plain = TargetCache(tmp_path, teacher, [TeacherSetting("sidd")]).targets(image)[0]
    cache = TargetCache(tmp_path, teacher, [TeacherSetting("sidd")], sharpen=0.5, student=student)
    sharpened = cache.targets(image)[0]
    second = student.denoise_pixels(plain / 255.0) * 255.0
    stored_range = (0, np.iinfo(np.uint16).max / FIXED_POINT)  # targets are kept in fixed point
    np.testing.assert_allclose(sharpened, np.clip(plain + 0.5 * (second - plain), *stored_range), atol=1 / 256)
    assert np.abs(sharpened - plain).mean() > 0.1
    assert len(list(tmp_path.glob("*.npy"))) == 2  # the teacher's target, read again, and the sharpened one
    monkeypatch.setattr(TargetCache, "_run_teacher", lambda *a: pytest.fail("recomputed a cached target"))
    monkeypatch.setattr(student, "denoise_pixels", lambda *a: pytest.fail("sharpened a cached target again"))
    np.testing.assert_array_equal(cache.targets(image)[0], sharpened)
    monkeypatch.undo()
    with torch.no_grad():
        student.model.out.weight *= 2  # another student: other sharpened targets, the teacher's kept
    other = TargetCache(tmp_path, teacher, [TeacherSetting("sidd")], sharpen=0.5, student=student)
    assert other.path(TeacherSetting("sidd"), image, sharpened=True) != cache.path(TeacherSetting("sidd"), image, sharpened=True)
    assert other.path(TeacherSetting("sidd"), image) == cache.path(TeacherSetting("sidd"), image)
    with pytest.raises(ConfigError, match="--init"):
        TargetCache(tmp_path, teacher, [TeacherSetting("sidd")], sharpen=0.5)


def test_sharpening_by_the_students_self_ensemble_keys_on_it(tmp_path):
    """sharpen_ensemble N: the second pass is the student's self-ensemble, cached apart from the single pass's."""
    from lgbpn import Denoiser
    from lgbpn.train.config import make_config
    from lgbpn.train.distill import _sharpening_student

    from .helpers import tiny_weights

    teacher, image = tiny_model("lgbpn-s"), noisy_image(40, 44)
    weights = tiny_weights(tmp_path / "student.safetensors", "unet-half")
    config = make_config(None, arch="unet-half", sharpen=0.5, sharpen_ensemble=8)
    student = _sharpening_student(config, weights)
    assert student.options.ensemble == 8
    single = Denoiser(student.model, student.options.replace(ensemble=1))
    plain = TargetCache(tmp_path, teacher, [TeacherSetting("sidd")]).targets(image)[0]
    by_one = TargetCache(tmp_path, teacher, [TeacherSetting("sidd")], sharpen=0.5, student=single)
    by_eight = TargetCache(tmp_path, teacher, [TeacherSetting("sidd")], sharpen=0.5, student=student)
    setting = TeacherSetting("sidd")
    assert by_eight.path(setting, image, sharpened=True) != by_one.path(setting, image, sharpened=True)
    second = student.denoise_pixels(plain / 255.0) * 255.0
    stored_range = (0, np.iinfo(np.uint16).max / FIXED_POINT)
    np.testing.assert_allclose(by_eight.targets(image)[0], np.clip(plain + 0.5 * (second - plain), *stored_range), atol=1 / 256)
    assert np.abs(by_eight.targets(image)[0] - by_one.targets(image)[0]).mean() > 0.01


def test_ensemble_targets_are_the_init_students_self_ensemble_on_the_noisy_image(tmp_path, monkeypatch):
    """ensemble_targets N (self-distillation): one target per image, the --init student's self-ensemble of N on the
    noisy image itself; the teacher does not run; cached; refused without --init or with sharpen."""
    from lgbpn.train.config import make_config
    from lgbpn.train.distill import _sharpening_student

    from .helpers import tiny_weights

    teacher, image = tiny_model("lgbpn-s"), noisy_image(40, 44)
    student = _sharpening_student(make_config(None, arch="unet-half", ensemble_targets=8),
                                  tiny_weights(tmp_path / "student.safetensors", "unet-half"))
    assert student.options.ensemble == 8
    settings = [TeacherSetting("sidd"), TeacherSetting("dnd")]
    cache = TargetCache(tmp_path / "targets", teacher, settings, student=student, student_targets=True)
    monkeypatch.setattr(TargetCache, "_run_teacher", lambda *a: pytest.fail("the teacher ran"))
    targets = cache.targets(image)
    expected = student.denoise_pixels(image / 255.0) * 255.0
    stored_range = (0, np.iinfo(np.uint16).max / FIXED_POINT)
    assert targets.shape == (1, 40, 44, 3)
    np.testing.assert_allclose(targets[0], np.clip(expected, *stored_range), atol=1 / 256)
    monkeypatch.setattr(student, "denoise_pixels", lambda *a: pytest.fail("made a cached target again"))
    np.testing.assert_array_equal(cache.targets(image), targets)
    with pytest.raises(ConfigError, match="ensemble_targets.*--init"):
        TargetCache(tmp_path, teacher, settings, student_targets=True)
    with pytest.raises(ConfigError, match="ensemble_targets"):
        TargetCache(tmp_path, teacher, settings, sharpen=0.5, student=student, student_targets=True)
    with pytest.raises(ConfigError, match="ensemble_targets"):
        make_config(None, ensemble_targets=1)


def test_target_cache_moves_the_teacher_and_the_sharpening_student_to_the_training_device(tmp_path):
    from lgbpn import Denoiser

    student = Denoiser(tiny_model("unet-half").eval(), guard=False, teacher_fallback=False)
    cache = TargetCache(tmp_path, tiny_model("lgbpn-s"), [TeacherSetting("sidd")], sharpen=0.5, student=student)
    meta = torch.device("meta")  # a device other than the CPU that every machine has
    cache.to(meta)
    assert next(cache.teacher.parameters()).device == meta
    assert cache.student.device == meta and next(cache.student.model.parameters()).device == meta
    assert cache.student.options.guard is False and cache.student.options.teacher_fallback is False  # options kept


def test_distill_sharpens_with_the_init_student_and_refuses_without_one(tmp_path):
    import yaml

    from .helpers import png, run_cli, tiny_weights

    (tmp_path / "photos").mkdir()
    png(tmp_path / "photos" / "a.png", noisy_image(48, 48))
    teacher = tiny_weights(tmp_path / "teacher.safetensors")
    config = tmp_path / "stronger.yaml"
    config.write_text(yaml.safe_dump({"arch": "unet-half", "teacher": str(teacher), "teacher_settings": ["sidd"], "steps": 1,
                                      "crop": 32, "batch": 1, "sharpen": 0.5}))
    args = ["distill", "--data", str(tmp_path / "photos"), "--config", str(config)]
    refused = run_cli(*args, "--out", str(tmp_path / "refused"))
    assert refused.exit_code != 0 and "--init" in refused.output + refused.stderr
    student = tiny_weights(tmp_path / "student.safetensors", "unet-half")
    result = run_cli(*args, "--out", str(tmp_path / "run"), "--init", str(student))
    assert result.exit_code == 0, result.output + result.stderr
    assert len(list((tmp_path / "run" / "targets").glob("*.npy"))) == 2  # the teacher's target and the sharpened one


def test_a_lightblend_target_has_the_blend_on_light_noise_only(tmp_path):
    from lgbpn.corrections import apply_corrections
    from lgbpn.layout import to_channels_first
    from lgbpn.tiling import denoise_tiled

    teacher = tiny_model("lgbpn-s")
    cache = TargetCache(tmp_path, teacher, [TeacherSetting("sidd", light_blend=True)])
    for sigma, blended in ((2, True), (20, False)):
        image = noisy_scene(sigma, 64)
        x = to_channels_first(image.astype(np.float32))[None]
        with torch.inference_mode():
            out = denoise_tiled(teacher.eval(), x, r3=False, precision="fp32")
        expected = apply_corrections(out, x, blend=blended)[0].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(cache._run_teacher(cache.settings[0], image), expected, atol=1e-3)


class _NoisyAsTarget:
    """Targets equal to the image plus a per-setting offset: crops must line up pixel for pixel."""

    def targets(self, noisy):
        return np.stack([noisy.astype(np.float32) + k for k in (0, 7)])


def test_crops_cut_and_turn_targets_like_the_noisy_image():
    image = noisy_image(50, 60)
    crops = NoisyCrops([Sample("a", lambda: image, None)], crop=24, seed=3, targets=_NoisyAsTarget())
    plain = NoisyCrops([Sample("a", lambda: image, None)], crop=24, seed=3)
    for k in range(6):
        noisy, targets = crops[k]
        assert targets.shape == (2, 3, 24, 24)
        assert torch.equal(noisy, plain[k])  # the same crops as self-supervised training draws
        assert torch.equal(targets[0], noisy) and torch.equal(targets[1], noisy + 7)


@pytest.mark.parametrize("channels", [3, 1])
def test_extra_noise_adds_camera_noise_to_the_share_of_inputs_asked_and_keeps_their_targets(channels):
    flat = np.full((64, 64, channels), 120, np.uint8)  # flat: what differs from it is the added noise
    plain = NoisyCrops([Sample("a", lambda: flat, None)], crop=32, seed=1, targets=_NoisyAsTarget())
    noised = NoisyCrops([Sample("a", lambda: flat, None)], crop=32, seed=1, targets=_NoisyAsTarget(), extra_noise=0.5)
    stds = []
    for k in range(40):
        noisy, targets = noised[k]
        assert torch.equal(targets, plain[k][1])  # the targets of the image as it is
        assert noisy.shape == (channels, 32, 32) and torch.equal(noisy, noisy.round())  # 8-bit steps
        stds.append(float((noisy - 120).std()))
    added = [s for s in stds if s > 0]
    assert 10 <= len(added) <= 30  # about half the crops
    assert min(added) > 0.3 and max(added) > 3 * min(added)  # noise of several levels
    assert abs(float(noised[0][0].mean()) - 120) < 3 and max(added) < 40


@pytest.mark.parametrize("channels", [3, 1])
def test_extra_pattern_adds_the_same_fine_pattern_to_the_inputs_and_their_targets(channels):
    flat = np.full((64, 64, channels), 120, np.uint8)
    plain = NoisyCrops([Sample("a", lambda: flat, None)], crop=32, seed=1, targets=_NoisyAsTarget())
    patterned = NoisyCrops([Sample("a", lambda: flat, None)], crop=32, seed=1, targets=_NoisyAsTarget(), extra_pattern=0.5)
    count = 0
    for k in range(40):
        noisy, targets = patterned[k]
        added = noisy - plain[k][0]
        assert torch.equal(targets[0] - plain[k][1][0], added) and torch.equal(targets[1] - plain[k][1][1], added)
        assert torch.equal(noisy, noisy.round())  # 8-bit steps
        if added.abs().max() > 0:
            count += 1
            assert 2 <= added.abs().max() <= 40 and (added == 0).float().mean() < 0.9  # strong, over part of the crop
            signs = torch.sign(added[0])
            assert (signs[:, 1:] != signs[:, :-1]).any() or (signs[1:] != signs[:-1]).any()  # fine: it alternates
    assert 10 <= count <= 30
    assert torch.equal(NoisyCrops([Sample("a", lambda: flat, None)], crop=32, seed=1)[3], plain[3][0])  # no targets: none


def test_fine_patterns_are_gratings_and_lattices_at_any_orientation():
    rng = np.random.default_rng(0)
    frequencies = np.fft.fftfreq(64)
    fy, fx = np.meshgrid(frequencies, frequencies, indexing="ij")
    lattice_angles, gratings = [], 0
    for _ in range(100):
        power = np.abs(np.fft.fft2(fine_pattern(rng, 64, 1)[..., 0])) ** 2
        power[0, 0] = 0
        # The spectrum's spread: a grating's energy lies along one line through the origin, a lattice's does not.
        moments = np.array([[(power * a * b).sum() for b in (fx, fy)] for a in (fx, fy)])
        smallest, largest = np.linalg.eigvalsh(moments)
        peak = np.unravel_index(power.argmax(), power.shape)
        if smallest < 0.15 * largest:
            gratings += 1
        elif smallest > 0.8 * largest:
            lattice_angles.append(np.degrees(np.arctan2(fy[peak], fx[peak])) % 90)
    assert gratings >= 20 and len(lattice_angles) >= 20
    assert np.ptp(lattice_angles) > 45  # lattices turned every way, not only upright checkerboards


def test_simulated_pairs_are_clean_photos_with_camera_noise_and_their_noiseless_capture_as_every_target(tmp_path):
    from .helpers import png

    colour = np.array([180, 150, 120], np.uint8)
    png(tmp_path / "flat.png", np.broadcast_to(colour, (80, 90, 3)).copy())  # flat: what differs is noise
    real = [Sample("a", lambda: noisy_image(64, 64), None)]
    plain = NoisyCrops(real, crop=32, seed=1, targets=_NoisyAsTarget())
    mixed = NoisyCrops(real, crop=32, seed=1, targets=_NoisyAsTarget(), simulated=0.5, clean_photos=[tmp_path / "flat.png"])
    simulated = 0
    for k in range(40):
        noisy, targets = mixed[k]
        assert noisy.shape == (3, 32, 32) and targets.shape == (2, 3, 32, 32)
        assert torch.equal(noisy, noisy.round())  # 8-bit, as the camera saved it
        if torch.equal(targets[0], targets[1]):  # one noiseless capture for every teacher setting
            simulated += 1
            target_colour = targets[0].mean((1, 2))
            assert (target_colour - torch.tensor(colour, dtype=torch.float32)).abs().max() < 4  # the photo's colour
            assert float((noisy - targets[0]).std()) > 0.3  # with noise on it
            # noise, not a colour shift: the tone curve and clipping bend heavy noise's mean, by little against it
            noise = (noisy - targets[0]).std((1, 2))
            assert ((noisy.mean((1, 2)) - target_colour).abs() < 2 + 0.5 * noise).all()
        else:  # the real crops draw differently, but are still real crops with their own targets
            assert torch.equal(targets[1], targets[0] + 7) and torch.equal(targets[0], noisy)
    assert 10 <= simulated <= 30  # about half
    assert all(torch.equal(a, b) for a, b in zip(mixed[5], mixed[5]))  # a pure function of (seed, index)
    assert torch.equal(NoisyCrops(real, crop=32, seed=1, targets=_NoisyAsTarget(), simulated=0.0,
                                  clean_photos=[tmp_path / "flat.png"])[3][0], plain[3][0])  # none asked: as before
    with pytest.raises(ValueError, match="clean photos"):
        NoisyCrops(real, crop=32, targets=_NoisyAsTarget(), simulated=0.5)
    (tmp_path / "broken.png").write_bytes(b"not a png")  # reported once, then never drawn again
    with_broken = NoisyCrops(real, crop=32, seed=1, targets=_NoisyAsTarget(), simulated=1.0,
                             clean_photos=[tmp_path / "broken.png", tmp_path / "flat.png"])
    with pytest.warns(UserWarning, match="broken.png") as caught:
        assert all(with_broken[k][0].shape == (3, 32, 32) for k in range(12))
    assert len([w for w in caught if "broken.png" in str(w.message)]) == 1


def test_scene_targets_give_that_share_of_the_simulated_pairs_the_scene_as_target(tmp_path):
    from .helpers import png

    png(tmp_path / "photo.png", noisy_image(80, 90))
    real = [Sample("a", lambda: noisy_image(64, 64), None)]
    crops = {share: NoisyCrops(real, crop=32, seed=1, targets=_NoisyAsTarget(), simulated=1.0,
                               clean_photos=[tmp_path / "photo.png"], scene_targets=share) for share in (1e-9, 0.5, 1.0)}
    scene_like = []
    for k in range(24):
        noisy = [crops[share][k][0] for share in crops]
        assert torch.equal(noisy[0], noisy[1]) and torch.equal(noisy[0], noisy[2])  # the same capture, noise and all
        captured, scene = crops[1e-9][k][1][0], crops[1.0][k][1][0]
        assert not torch.equal(captured, scene)
        half = crops[0.5][k][1][0]
        scene_like.append(bool((half - scene).abs().max() < (half - captured).abs().max()))
    assert 6 <= sum(scene_like) <= 18  # about half


def test_simulated_pairs_come_from_the_clean_folders_less_excluded_names_else_the_corpus(tmp_path, monkeypatch, caplog):
    from lgbpn.train import trainer
    from lgbpn.train.trainer import collect_clean_photos

    from .helpers import png

    (tmp_path / "clean").mkdir()
    for name in ("NikonD800_a.png", "Canon_b.png"):
        png(tmp_path / "clean" / name, noisy_image(40, 40))
    config = make_config("lgbpn-fast", simulated=0.5, clean_data=[str(tmp_path / "clean")], exclude=["*NikonD800*"])
    assert collect_clean_photos(config) == [tmp_path / "clean" / "Canon_b.png"]
    monkeypatch.setattr(trainer, "CLEAN_CORPUS", tmp_path / "clean")  # no folder named: the built corpus
    assert len(collect_clean_photos(make_config("lgbpn-fast", simulated=0.5))) == 2
    monkeypatch.setattr(trainer, "CLEAN_CORPUS", tmp_path / "absent")  # none built: the real photos alone, said
    assert collect_clean_photos(make_config("lgbpn-fast", simulated=0.5)) == []
    assert "no clean photos" in caplog.text and "build_clean_corpus.py" in caplog.text


def test_a_students_range_counts_the_heaviest_extra_noise(tmp_path):
    cache = TargetCache(tmp_path, tiny_model("lgbpn-s"), [TeacherSetting("sidd")])
    samples = [Sample("light", lambda: noisy_scene(2, 96), None)]
    light = cache.fill(samples, progress=False)
    ranged = cache.fill(samples, progress=False, extra_noise=True)
    assert light < 4 and ranged > 10


@pytest.mark.slow
def test_student_distils_end_to_end_and_resumes_exactly(tmp_path, shared_data):
    data = [shared_data / "sidd_samples"]
    teacher = tiny_model("lgbpn-s")
    config = make_config(arch="unet", model=STUDENT, steps=4, crop=32, batch=2, lr=1e-3, val_every=4, val_images=1,
                         val_crop=48, checkpoint_every=2, log_every=1, teacher="tiny", teacher_settings=["sidd"])

    def cache():
        return TargetCache(tmp_path / "targets", teacher, [TeacherSetting.parse(s) for s in config.teacher_settings])

    full = train(data, tmp_path / "full", config, progress=False, targets=cache())
    assert len(list((tmp_path / "targets").glob("*.npy"))) == 9  # every training image, once
    train(data, tmp_path / "part", config, progress=False, targets=cache(), stop_at=2)
    resumed = train(data, tmp_path / "part", config, progress=False, targets=cache(), resume=True)
    for (name, a), b in zip(full["model"].state_dict().items(), resumed["model"].state_dict().values()):
        assert torch.equal(a, b), name
    assert not full["model"].blind_spot and (tmp_path / "full" / "best.safetensors").exists()
    # Corrected targets: the student's weights say its output holds the corrections already.
    student = load_model(tmp_path / "full" / "best.safetensors")
    assert student.corrections_learnt
    # ... and name their teacher and the noise of the noisiest training image (SIDD: sigma 10 to 29).
    assert student.teacher == str((Path.cwd() / "tiny").resolve()) and 20 < student.noise_sigma_max < 40


@pytest.mark.slow
def test_a_noise_aware_student_distils_from_real_and_simulated_pairs(tmp_path):
    from lgbpn.data.crops import heaviest_simulated_noise

    from .helpers import png

    (tmp_path / "photos").mkdir()
    (tmp_path / "clean").mkdir()
    png(tmp_path / "photos" / "a.png", noisy_scene(3, 64))
    png(tmp_path / "clean" / "b.png", noisy_image(64, 80))
    config = make_config(arch="unet", model=dict(STUDENT, noise_aware=True), steps=3, crop=32, batch=4, lr=1e-3,
                         val_every=100, checkpoint_every=3, log_every=1, teacher="tiny", teacher_settings=["sidd"],
                         simulated=0.5, clean_data=[str(tmp_path / "clean")])
    cache = TargetCache(tmp_path / "targets", tiny_model("lgbpn-s"), [TeacherSetting("sidd")])
    summary = train([tmp_path / "photos"], tmp_path / "run", config, progress=False, targets=cache)
    assert summary["step"] == 3 and summary["model"].noise_level is None  # told per batch, then let go
    student = load_model(tmp_path / "run" / "last.safetensors")
    assert student.noise_aware and student.noise_sigma_max == pytest.approx(heaviest_simulated_noise(), abs=1e-3)
    assert student.noise_sigma_max > 20  # the simulated cameras' top ISO, far above this photo's sigma 3


def test_a_student_of_corrected_targets_is_not_corrected_again(tmp_path):
    from lgbpn.denoiser import Denoiser
    from lgbpn.weights import save_weights

    settings = [TeacherSetting("sidd"), TeacherSetting("dnd", r3=True)]
    assert TargetCache(tmp_path, tiny_model("lgbpn-s"), settings).corrections_learnt
    assert not TargetCache(tmp_path, tiny_model("lgbpn-s"), settings + [TeacherSetting.parse("sidd:raw")]).corrections_learnt
    student = tiny_model("unet")
    image = noisy_image(40, 48)
    raw = Denoiser(student, lowpass_sigma=None, blend=False)(image)
    assert not np.array_equal(Denoiser(student)(image), raw)  # corrections change an ordinary network's output
    student.corrections_learnt = True
    save_weights(student, tmp_path / "student.safetensors")
    loaded = load_model(tmp_path / "student.safetensors")
    assert loaded.corrections_learnt
    np.testing.assert_array_equal(Denoiser(loaded)(image), raw)  # ... but not those of a student that learnt them


def test_distill_cli_keeps_the_recipes_teacher_when_another_student_is_named(tmp_path):
    import yaml

    from .helpers import png, run_cli, tiny_weights

    (tmp_path / "photos").mkdir()
    png(tmp_path / "photos" / "a.png", noisy_image(48, 48))
    teacher = tiny_weights(tmp_path / "teacher.safetensors")
    result = run_cli("distill", "--data", str(tmp_path / "photos"), "--out", str(tmp_path / "run"), "--arch", "unet-half",
                     "--teacher", str(teacher), "--steps", "1", "--crop", "32", "--batch", "1")
    assert result.exit_code == 0, result.output
    assert "recipe: lgbpn-fast" in result.stderr
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    recipe = make_config("lgbpn-fast")
    assert saved["arch"] == "unet-half" and saved["teacher_settings"] == recipe.teacher_settings
    assert saved["converged_gain"] == recipe.converged_gain


def test_distill_adapts_its_teacher_to_the_photos_first_and_keeps_it_on_resume(tmp_path):
    import yaml

    from .helpers import png, run_cli, tiny_weights

    (tmp_path / "photos").mkdir()
    png(tmp_path / "photos" / "a.png", noisy_image(48, 48))
    teacher = tiny_weights(tmp_path / "teacher.safetensors")
    run = tmp_path / "run"
    args = ["distill", "--data", str(tmp_path / "photos"), "--out", str(run), "--teacher", str(teacher), "--crop", "32",
            "--batch", "1", "--adapt", "2"]
    result = run_cli(*args, "--steps", "1")
    assert result.exit_code == 0, result.output
    assert "recipe: lgbpn-fast-adapt" in result.stderr
    # The student starts from the shipped one, not from scratch, and its weights say so.
    student, shipped = load_model(run / "last.safetensors"), load_model(pretrained_path("lgbpn-fast"))
    assert student.base == "lgbpn-fast"
    moved = [float((a - b).abs().max()) for a, b in zip(student.state_dict().values(), shipped.state_dict().values())]
    assert max(moved) < 0.01
    adapted = run / "teacher.safetensors"
    before, after = load_model(teacher).state_dict(), load_model(adapted).state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # it was fine-tuned
    assert yaml.safe_load((run / "config.yaml").read_text())["teacher"] == str(adapted)
    assert load_model(run / "last.safetensors").teacher == str(adapted.resolve())  # the fallback is the adapted one
    stamp = adapted.stat().st_mtime_ns
    result = run_cli(*args, "--steps", "2", "--resume")
    assert result.exit_code == 0, result.output
    assert adapted.stat().st_mtime_ns == stamp  # resumed with the same teacher, not adapted again


def test_distill_without_clean_references_chooses_on_held_out_noisy_crops(tmp_path):
    import yaml

    from lgbpn.weights import read_weights

    from .helpers import png, run_cli, tiny_weights

    (tmp_path / "photos").mkdir()
    for i in range(2):
        png(tmp_path / "photos" / f"{i}.png", noisy_image(96, 64, seed=i))
    config = dict(arch="unet", model=dict(base_ch=4, middle_blocks=1), teacher=str(tiny_weights(tmp_path / "t.safetensors")),
                  teacher_settings=["sidd"], steps=3, crop=32, batch=1, val_every=1, val_images=2, val_crop=32,
                  log_every=1, ema_decay=0.9)
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    result = run_cli("distill", "--data", str(tmp_path / "photos"), "--out", str(run), "--config", str(tmp_path / "recipe.yaml"))
    assert result.exit_code == 0, result.output
    assert "selected by the self-supervised score on 2 held-out noisy crops" in result.stdout + result.stderr
    log = (run / "log.csv").read_text().splitlines()
    scores = [float(line.split(",")[-1]) for line in log[1:]]
    assert log[0].endswith("val_selfsup") and len(scores) == 3 and all(np.isfinite(scores))
    meta = read_weights(run / "best.safetensors")[1]
    assert float(meta["val_selfsup"]) == pytest.approx(max(scores), abs=1e-3)
    assert int(meta["step"]) == 1 + scores.index(max(scores))


def test_noise_beyond_the_students_range_goes_to_its_teacher(tmp_path, caplog):
    from lgbpn.denoiser import Denoiser
    from lgbpn.weights import save_weights

    teacher = tmp_path / "teacher.safetensors"
    save_weights(tiny_model("lgbpn-s"), teacher)
    student = tiny_model("unet")
    student.teacher, student.noise_sigma_max = str(teacher), 4.0
    save_weights(student, tmp_path / "student.safetensors")
    loaded = load_model(tmp_path / "student.safetensors")
    assert (loaded.teacher, loaded.noise_sigma_max) == (str(teacher), 4.0)

    options = dict(r3=False, lowpass_sigma=None, blend=False)
    light, heavy = noisy_scene(3), noisy_scene(20)
    gated = Denoiser(loaded, **options)
    plain = Denoiser(tiny_model("unet"), **options)  # the same student without a range
    np.testing.assert_array_equal(gated(light), plain(light))
    with caplog.at_level("INFO", logger="lgbpn"):
        np.testing.assert_array_equal(gated(heavy), Denoiser.from_weights(teacher, **options)(heavy))
    assert "beyond the student's range" in caplog.text
    np.testing.assert_array_equal(Denoiser(loaded, teacher_fallback=False, **options)(heavy), plain(heavy))  # opted out

    student.teacher = str(tmp_path / "gone.safetensors")  # a teacher that cannot be found: the student, and a warning
    with caplog.at_level("WARNING", logger="lgbpn"):
        np.testing.assert_array_equal(Denoiser(student, **options)(heavy), plain(heavy))
    assert "cannot be loaded" in caplog.text and "gone.safetensors" in caplog.text
