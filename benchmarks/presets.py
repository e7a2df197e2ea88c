"""Which test-time preset suits which noise: the network alone (and with corrections) per preset,
beside the noise level and correlation measured from the noisy image (lgbpn.noise).

    python benchmarks/presets.py --weights campaign/lgbpn-s/best.safetensors --json benchmarks/results/presets.json

A blind-spot network cannot see the detail inside its blind patch: on heavy noise that costs little,
on weak noise it costs more than the noise removed. The PD factors and the shrunk-grid ratios trade
one against the other; this prints, per image, each preset's PSNR and the measured noise, so a rule
for `--preset auto` can be read off (and checked on sets it was not read from).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from lgbpn import Denoiser, InferenceOptions
from lgbpn.data.formats import discover
from lgbpn.io import atomic_write_bytes
from lgbpn.metrics import psnr
from lgbpn.models.lgbpn import PRESETS
from lgbpn.noise import noise_profile

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", required=True)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/presets.json"))
    parser.add_argument("--sets", default="sidd_samples,polyu")
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--every", type=int, default=1, help="Only every N-th image of each set")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    presets = args.presets.split(",")
    raw = InferenceOptions(r3=False, blend=False, lowpass_sigma=None)
    denoisers = {p: Denoiser.from_weights(args.weights, preset=p, options=raw) for p in presets}
    rows = []
    for name in args.sets.split(","):
        for sample in [s for s in discover(DATA / name) if s.clean is not None][:: args.every]:
            t0 = time.perf_counter()
            noisy, clean = sample.noisy(), sample.clean()
            profile = noise_profile(torch.from_numpy(noisy).permute(2, 0, 1).float())
            row = dict(set=name, image=sample.name, sigma=profile.sigma, correlation=profile.correlation,
                       noisy=psnr(noisy, clean))
            for preset, denoiser in denoisers.items():
                out = denoiser(noisy)
                row[preset] = psnr(out, clean)
                row[preset + "+corrected"] = psnr(_corrected(out, noisy), clean)
            rows.append(row)
            cells = "  ".join(f"{p} {row[p]:.2f}/{row[p + '+corrected']:.2f}" for p in presets)
            print(f"{sample.name[:32]:32s} sigma {profile.sigma:5.2f} rho {profile.correlation:.2f} "
                  f"noisy {row['noisy']:.2f}  {cells}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.json, json.dumps(dict(weights=str(args.weights), rows=rows), indent=1).encode())


def _corrected(out: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    from lgbpn.corrections import apply_corrections

    as_tensor = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].float()  # noqa: E731
    return apply_corrections(as_tensor(out), as_tensor(noisy))[0].permute(1, 2, 0).clamp(0, 255).round().byte().numpy()


if __name__ == "__main__":
    main()
