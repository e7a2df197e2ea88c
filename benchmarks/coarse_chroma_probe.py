"""Would a coarse scale remove the colour noise that a student leaves? (issue 22, "coarse colour noise")

The student is run again on the image downsampled by FACTOR (area mean), upsampled back (bilinear); the
low frequencies (Gaussian of SIGMA) of the difference to the student's own output are added to that
output: all channels, or only their chroma (the difference less its channel mean). Prints the mean PSNR
of each variant (network alone, no guard) on the images with clean references:

    python benchmarks/coarse_chroma_probe.py runs/loco/best.safetensors --subset polyu --cameras NikonD800,Sony
    python benchmarks/coarse_chroma_probe.py lgbpn-fast --subset sidd_samples
"""

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lgbpn import Denoiser
from lgbpn.data.formats import discover
from lgbpn.denoiser import weights_path
from lgbpn.metrics import psnr
from lgbpn.nn.lowpass import gaussian_blur

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def coarse_pass(denoiser: Denoiser, x: torch.Tensor, factor: int) -> torch.Tensor:
    """The student's output on x downsampled by `factor`, brought back to x's size."""
    h, w = x.shape[-2:]
    coarse = denoiser.denoise_batch(F.avg_pool2d(x[..., : h // factor * factor, : w // factor * factor], factor))
    up = F.interpolate(coarse, size=(h // factor * factor, w // factor * factor), mode="bilinear", align_corners=False)
    return F.pad(up, (0, w - up.shape[-1], 0, h - up.shape[-2]), mode="replicate")


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return x[0].permute(1, 2, 0).clamp(0, 255).round().byte().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", help="a shipped model's name or a weights file")
    parser.add_argument("--subset", default="polyu", help="a folder of ../shared/data with noisy/ and clean/")
    parser.add_argument("--cameras", default="", help="only images whose names hold one of these (comma-separated)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    denoiser = Denoiser.from_weights(weights_path(args.weights), guard=False, teacher_fallback=False)
    cameras = [c for c in args.cameras.split(",") if c]
    samples = [s for s in discover(DATA / args.subset)
               if s.clean is not None and (not cameras or any(c in s.name for c in cameras))]
    scores: dict[str, list[float]] = {}
    for sample in samples:
        noisy, clean = sample.noisy(), sample.clean()
        x = torch.from_numpy(noisy).permute(2, 0, 1)[None].float()
        with torch.inference_mode():
            out = denoiser.denoise_batch(x)
            variants = {"student": out}
            for factor in (2, 4):
                up = coarse_pass(denoiser, x, factor)
                for sigma in (2, 4, 8):
                    low = gaussian_blur(up - out, sigma)
                    variants[f"x{factor} sigma {sigma}, all"] = out + low
                    variants[f"x{factor} sigma {sigma}, chroma"] = out + (low - low.mean(1, keepdim=True))
        for name, result in variants.items():
            scores.setdefault(name, []).append(psnr(to_uint8(result), clean))
    print(f"{args.weights} on {len(samples)} images of {args.subset} {','.join(cameras)} "
          f"(noisy {np.mean([psnr(s.noisy(), s.clean()) for s in samples]):.3f} dB)")
    for name, values in scores.items():
        print(f"  {name:22s} {np.mean(values):.3f} dB")


if __name__ == "__main__":
    main()
