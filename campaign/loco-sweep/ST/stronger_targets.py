"""Experiment: each cached teacher target T of the loco run becomes T + 0.5 (D(T) - T), D the loco student's
network (its coarse pass on, no guard): the student's own strength-1.5 second pass (strength.py) applied to
its targets, so that a fine-tune learns in one pass what two passes give (stronger denoising scored higher on
every dev set: the student under-denoises).

    lgbpn distill --data ../shared/data --out runs/locoB --config runs/locoB.yaml   # the shipped recipe, loco
    python campaign/loco-sweep/ST/stronger_targets.py runs/locoB/targets runs/locoS/targets runs/locoB/best.safetensors
    lgbpn distill --data ../shared/data --out runs/locoS --config campaign/loco-sweep/ST/config.yaml \
        --init runs/locoB/best.safetensors

The control (campaign/loco-sweep/C1000) is the same fine-tune on locoB's targets unchanged.
"""
import sys
from pathlib import Path

import numpy as np
import torch

from lgbpn import Denoiser
from lgbpn.train.distill import FIXED_POINT

torch.set_num_threads(2)
source, target, weights = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
student = Denoiser.from_weights(weights, guard=False, coarse=True, teacher_fallback=False, precision="fp32")
target.mkdir(parents=True, exist_ok=True)
for path in sorted(source.glob("*.npy")):  # a cached target: HxWxC, 0..255 in fixed point
    t = np.load(path).astype(np.float32) / FIXED_POINT
    second = student.denoise_pixels(t / 255.0) * 255.0  # float images are 0..1
    stronger = t + 0.5 * (second - t)
    np.save(target / path.name, np.clip(np.round(stronger * FIXED_POINT), 0, np.iinfo(np.uint16).max).astype(np.uint16))
