"""Experiment: the loco target cache with each teacher target's coarse chroma (Gaussian sigma 2) replaced by
that of the loco student's output on the 2x-downsampled noisy image.

    cp -r runs/locoW32/targets runs/locoCC/    # the 1500-step loco run's cached teacher targets
    python campaign/loco-sweep/CC/coarse_chroma_targets.py
    lgbpn distill --data ../shared/data --out runs/locoCC --config campaign/loco-sweep/CC/config.yaml
"""
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lgbpn import Denoiser
from lgbpn.nn.lowpass import gaussian_blur
from lgbpn.train.config import make_config
from lgbpn.train.distill import FIXED_POINT, TargetCache, TeacherSetting, load_teacher
from lgbpn.train.trainer import collect_samples

torch.set_num_threads(2)
config = make_config("campaign/loco-sweep/CC/config.yaml")
cache = TargetCache(Path("runs/locoCC/targets"), load_teacher(config.teacher), [TeacherSetting.parse(s) for s in config.teacher_settings], config.seed)
student = Denoiser.from_weights("runs/locoB/best.safetensors", guard=False, teacher_fallback=False, precision="fp32")
done = 0
for sample in collect_samples([Path("../shared/data")], config.exclude):
    noisy = sample.noisy()
    noisy = noisy if noisy.ndim == 3 else noisy[..., None]
    x = torch.from_numpy(noisy).permute(2, 0, 1)[None].float()
    h, w = x.shape[-2:]
    with torch.inference_mode():
        coarse = student.denoise_batch(F.avg_pool2d(x[..., : h // 2 * 2, : w // 2 * 2], 2))
        up = F.interpolate(coarse, size=(h // 2 * 2, w // 2 * 2), mode="bilinear", align_corners=False)
        up = F.pad(up, (0, w - up.shape[-1], 0, h - up.shape[-2]), mode="replicate")
    for setting in cache.settings:
        path = cache.path(setting, noisy)
        assert path.exists(), path
        target = torch.from_numpy(np.load(path).astype(np.float32) / FIXED_POINT).permute(2, 0, 1)[None]
        low = gaussian_blur(up - target, 2.0)
        corrected = target + (low - low.mean(1, keepdim=True))
        out = corrected[0].permute(1, 2, 0).numpy()
        np.save(path, np.clip(np.round(out * FIXED_POINT), 0, np.iinfo(np.uint16).max).astype(np.uint16))
        done += 1
print("rewrote", done, "targets")
