"""Could a student adapt to a camera's photos with no teacher? (issue 23, a probe, not a feature)

The student is fine-tuned on the photos' own Recorrupted-to-Recorrupted pairs (Pang et al., CVPR 2021):
input y + z, target y - z, where the noise sample z is the starting student's residual y - f(y), rolled
to another place of the same photo (independent of the noise where it lands) and scaled so that it holds
the whole noise: by `--scale`, or per photo by 1 / noise.residual_share (the share of the noise's amplitude
that the residual holds on the flat blocks). Then y + z and y - z carry uncorrelated noises, and the MSE to
y - z is, up to a constant, the MSE to the clean photo at twice the noise (selfscore.py). Prints the mean
PSNR against the clean references every 50 steps, and per photo at --report:

    python benchmarks/r2r_adapt_probe.py runs/locoS3/own.safetensors --subset polyu --cameras NikonD800,Sony
    python benchmarks/r2r_adapt_probe.py src/lgbpn/pretrained/lgbpn-fast.safetensors --subset sidd_samples --cameras sidd

Measured on 2026-12-04 (2 threads, about 40 s for 100 steps): from the leave-camera-out student on the 22
unseen photos, 38.52 -> 38.66 dB at 100 steps with the per-photo scale (1.1-2.0; better on 20 of 22, worst
-0.14); on SIDD with the shipped student (scales 1.0-1.14) 34.75 -> 34.64 (1 of 9 better; an earlier run
with a fixed scale 1.5 there lost 2.8 dB). Since then the default `--adapt` route (adapt.self_adapt_model, 50
steps): from the seventh-stage student, scored as it denoises (its output corrections, keep-base) with
`--ensemble 8`, SIDD gains 0.43 dB over the shipped default (benchmarks/adapt_route.py, docs/usage.md); the raw
network's figures here are not the route's.

Tried on SIDD on 2026-12-04 (shipped student, 100 steps, one thread; each a throwaway change to this script): the
moved sample scaled per pixel by a noise level function (the residual's spread per output brightness, 16 bins per
channel) 34.54; samples assembled from the residual on the flat blocks only, each destination block taking a flat
block of the nearest brightness, 33.91; input y + z / 2 and target y - 2z (Pang et al.'s alpha 0.5: the network
trained nearer the photo's own noise level) 34.79 at 50 steps, 34.59 at 100; the true noise (noisy - clean, its
per-channel mean removed since SIDD's references are brighter) moved and unscaled, 34.52. Since even the true noise
loses there, SIDD's loss is not the sample's fault: this fine-tune does not suit heavy, clipped phone noise.
"""

import argparse
import copy
from pathlib import Path

import numpy as np
import torch

from lgbpn.adapt import recorrupted_pairs
from lgbpn.data.formats import discover
from lgbpn.layout import to_channels_first
from lgbpn.metrics import psnr
from lgbpn.noise import residual_share
from lgbpn.scale import to_model_scale
from lgbpn.weights import load_model

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def psnrs(model: torch.nn.Module, photos: list[torch.Tensor], cleans: list[torch.Tensor]) -> np.ndarray:
    model.eval()
    with torch.inference_mode():
        return np.array([psnr(model(y[None])[0].clamp(0, 255).round(), c) for y, c in zip(photos, cleans)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", type=Path, help="the student to start from")
    parser.add_argument("--subset", default="polyu")
    parser.add_argument("--cameras", default="NikonD800,Sony", help="photos whose names hold one of these")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--report", type=int, default=100, help="the step whose per-photo gains are printed")
    parser.add_argument("--scale", type=float, help="the noise sample's scale (default: measured per photo)")
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    samples = [s for s in discover(DATA / args.subset) if any(c in s.name for c in args.cameras.split(","))]
    photos = [to_channels_first(to_model_scale(s.noisy())) for s in samples]
    cleans = [to_channels_first(to_model_scale(s.clean())) for s in samples]
    start = load_model(args.weights).eval()
    with torch.inference_mode():
        residuals = [y - start(y[None])[0] for y in photos]
    scales = [args.scale or 1 / residual_share(y, r) for y, r in zip(photos, residuals)]
    print(f"{len(photos)} photos; noise sample scales {np.round(scales, 2).tolist()}")
    before = psnrs(start, photos, cleans)
    print(f"start {before.mean():.3f} dB")
    model = copy.deepcopy(start)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(0)
    for step in range(1, args.steps + 1):
        model.train()
        inputs, targets = recorrupted_pairs(photos, residuals, scales, args.crop, args.batch, gen)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(inputs)
        loss = (out.float() - targets).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 50 == 0 or step == args.report:
            after = psnrs(model, photos, cleans)
            line = f"step {step}: {after.mean():.3f} dB"
            if step == args.report:
                gain = after - before
                line += f"; better on {(gain > 0).sum()}/{len(gain)}, worst {gain.min():+.3f}, best {gain.max():+.3f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
