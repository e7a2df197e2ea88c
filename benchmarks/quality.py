"""Quality table for issue 4: PSNR/SSIM on ../shared/data, per subset, for classical and our methods.

    python benchmarks/quality.py --methods noisy,nlm,bm3d --json benchmarks/results/quality.json
    python benchmarks/quality.py --methods lgbpn-s,lgbpn-s+r3,lgbpn-s+adapt,apbsn-s,lgbpn-s+noblend
    python benchmarks/quality.py --methods noisy,lgbpn-s+r3 --subsets polyu --limit 10 --threads 1
    python benchmarks/quality.py --table                  # docs/results.md's table from the JSON

Leave-camera-out (a camera the model never saw): train without two PolyU cameras, then score those
images only (stored as the subset `polyu:NikonD800,Sony`, beside the in-distribution ones):

    lgbpn train --data ../shared/data --out runs/loco --config lgbpn-s --exclude '*NikonD800*' --exclude '*Sony*'
    python benchmarks/quality.py --methods noisy,runs/loco/best.safetensors+raw,runs/loco/best.safetensors \
        --subsets polyu --cameras NikonD800,Sony

Each method's rows are merged into the JSON (so methods can be run at different times). Metric
conventions as `lgbpn eval` (uint8 rounding, data range 255, skimage SSIM on RGB, per-image mean).
Classical methods get their noise level from skimage's estimate_sigma, per image (no clean data).
BM3D (`pip install bm3d`) is an optional, non-commercial benchmark dependency only.
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
from lgbpn.metrics import psnr, ssim
from lgbpn.nn.lowpass import DEFAULT_SIGMA
from lgbpn.options import PRESET_CHOICES

SUBSETS = {"sidd": "sidd_samples", "polyu": "polyu"}
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def classical(name: str):
    from skimage.restoration import denoise_nl_means, estimate_sigma

    def run(noisy: np.ndarray) -> np.ndarray:
        x = noisy.astype(np.float64) / 255.0
        sigma = float(np.mean(estimate_sigma(x, channel_axis=-1)))
        if name == "nlm":
            out = denoise_nl_means(x, h=0.8 * sigma, sigma=sigma, patch_size=5, patch_distance=6, channel_axis=-1,
                                   fast_mode=True)
        else:
            import bm3d

            out = bm3d.bm3d_rgb(x, sigma)
        return np.clip(out * 255.0, 0, 255)

    return run


def ours(spec: str, noisy_paths: list[Path]):
    """`model[+r3][+adapt][+noblend|+lightblend][+nolowpass][+raw][+PRESET][+nofallback][+noguard]
    [+nocoarse|+coarse|+coarseauto][+ensN]`: a shipped model or a weights file, with R3 and/or adaptation on the
    subset's noisy images, without the Wiener blend or with it only where the measured noise is light, without the
    low-frequency correction (`raw`: neither, nor a student's guard: the network's own output), with a fixed
    test-time preset (default: auto), a student without its teacher on noise beyond its range, or without its guard;
    a student's coarse pass (lgbpn.coarse) runs everywhere with `coarse`, where the noise is heavy with `coarseauto`
    (the default until 2026-12-04: rows measured before then without a coarse flag had it), else as
    InferenceOptions' default (off); `ensN`: a student's self-ensemble of N."""
    model, *flags = spec.split("+")
    raw = "raw" in flags
    preset = next((f for f in flags if f in PRESET_CHOICES), "auto")
    ensemble = next((int(f.removeprefix("ens")) for f in flags if f.startswith("ens")), 1)
    blend = "auto" if "lightblend" in flags else "noblend" not in flags and not raw
    options = InferenceOptions(r3="r3" in flags, blend=blend, preset=preset,
                               lowpass_sigma=None if "nolowpass" in flags or raw else DEFAULT_SIGMA,
                               teacher_fallback="nofallback" not in flags, guard="noguard" not in flags and not raw,
                               coarse=True if "coarse" in flags else "auto" if "coarseauto" in flags else False,
                               ensemble=ensemble)
    if model.endswith((".safetensors", ".pth")):
        denoiser = Denoiser.from_weights(model, options=options)
    else:
        denoiser = Denoiser.from_pretrained(model, options=options)
    if "adapt" in flags:
        from lgbpn.adapt import adapt_to_images

        denoiser = denoiser.blind_spot()
        losses = adapt_to_images(denoiser, noisy_paths, ADAPT_STEPS)
        print(f"  adapted {ADAPT_STEPS} steps: loss {losses[0]:.2f} -> {np.mean(losses[-5:]):.2f}")
    return denoiser


ADAPT_STEPS = 30


def markdown_table(results: dict) -> str:
    """Methods x subsets: PSNR / SSIM, and on how many images the method is below the noisy input."""
    subsets = list(results)
    methods = list(dict.fromkeys(m for subset in subsets for m in results[subset]))
    lines = ["| method | " + " | ".join(f"{s} PSNR / SSIM (below noisy)" for s in subsets) + " |",
             "|---" * (len(subsets) + 1) + "|"]
    for method in methods:
        cells = []
        for subset in subsets:
            entry = results[subset].get(method)
            if entry is None:
                cells.append("not run")
                continue
            noisy = {r["image"]: r["psnr"] for r in results[subset]["noisy"]["images"]}
            below = sum(r["psnr"] < noisy[r["image"]] for r in entry["images"])
            cells.append(f"{entry['psnr']:.2f} / {entry['ssim']:.3f} ({below}/{len(entry['images'])})")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--methods", help="Comma-separated methods to run (see the module docstring)")
    parser.add_argument("--table", action="store_true", help="Print the JSON's results as a markdown table")
    parser.add_argument("--merge", type=Path, nargs="*", default=[], help="Merge these result JSONs into --json")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/quality.json"))
    parser.add_argument("--subsets", default="sidd,polyu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, help="Only the first N images of each subset (slow methods); "
                        "the rows are stored as METHOD@N")
    parser.add_argument("--cameras", help="Only images whose name holds one of these comma-separated camera names "
                        "(leave-camera-out); stored as the subset SUBSET:CAMERAS")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = json.loads(args.json.read_text()) if args.json.exists() else {}
    for other in args.merge:
        for subset, methods in json.loads(other.read_text()).items():
            results.setdefault(subset, {}).update(methods)
        atomic_write_bytes(args.json, json.dumps(results, indent=1).encode())
    if args.table:
        print(markdown_table(results))
    if not args.methods:
        return
    cameras = args.cameras.split(",") if args.cameras else []
    for name in args.subsets.split(","):
        samples = [s for s in discover(DATA / SUBSETS[name]) if s.clean is not None
                   and (not cameras or any(camera in s.name for camera in cameras))][:args.limit]
        subset = f"{name}:{args.cameras}" if cameras else name
        for method in args.methods.split(","):
            t0 = time.perf_counter()
            if method in ("nlm", "bm3d"):
                fn = classical(method)
            elif method == "noisy":
                fn = lambda x: x  # noqa: E731
            else:
                fn = ours(method, [DATA / SUBSETS[name] / "noisy" / s.name for s in samples])
            rows = []
            for s in samples:
                noisy, clean = s.noisy(), s.clean()
                out = fn(noisy)
                rows.append(dict(image=s.name, psnr=psnr(out, clean), ssim=ssim(out, clean)))
            entry = dict(psnr=float(np.mean([r["psnr"] for r in rows])), ssim=float(np.mean([r["ssim"] for r in rows])),
                         seconds=time.perf_counter() - t0, images=rows)
            key = f"{method}@{args.limit}" if args.limit else method
            results.setdefault(subset, {})[key] = entry
            print(f"{subset:6s} {key:22s} PSNR {entry['psnr']:.2f}  SSIM {entry['ssim']:.4f}  "
                  f"({entry['seconds']:.0f} s)", flush=True)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(args.json, json.dumps(results, indent=1).encode())


if __name__ == "__main__":
    main()
