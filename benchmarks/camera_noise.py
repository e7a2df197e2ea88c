"""The camera-noise simulator (lgbpn.data.camera) against real noise, and its speed.

    python benchmarks/camera_noise.py                 # both
    python benchmarks/camera_noise.py --draws 400 --no-speed

Noise: lgbpn.noise's measure_noise (sigma in grey levels, and the neighbour correlation rho(1)) on every
real noisy photo in ../shared/data, per set, beside the same measure on simulated captures of the sets'
clean references and scikit-image's photos (random 256x256 crops, random cameras and ISOs). Also the
simulated captures' true noise (std of noisy minus clean target), which the measure should track.
Speed: CPU time (process time, so other jobs on the machine count little) per simulated crop.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from lgbpn.data.camera import sample_camera, simulate
from lgbpn.io import read_image
from lgbpn.noise import measure_noise

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REAL = {"sidd": "sidd_samples/noisy", "polyu": "polyu/noisy", "dnd": "extra/dnd_cbdnet/noisy", "sidd_neca": "extra/sidd_neca/noisy"}
CLEAN = ["sidd_samples/clean", "polyu/clean", "extra/sidd_neca/clean"]
SKIMAGE_PHOTOS = ["chelsea", "coffee", "rocket"]


def _profile(image: np.ndarray) -> tuple[float, float]:
    profile = measure_noise(torch.from_numpy(np.array(image)).permute(2, 0, 1).double())
    return profile.sigma, profile.correlation


def _summary(name: str, sigmas: list[float], rhos: list[float]) -> str:
    s, r = np.asarray(sigmas), np.asarray(rhos)
    q = np.percentile(s, [0, 5, 50, 95, 100])
    return (f"{name:<22} n={len(s):<4} sigma min {q[0]:5.2f}  p5 {q[1]:5.2f}  median {q[2]:5.2f}  p95 {q[3]:5.2f}  "
            f"max {q[4]:5.2f}   rho(1) median {np.median(r):.2f} ({np.percentile(r, 5):.2f}-{np.percentile(r, 95):.2f})")


def clean_photos() -> list[np.ndarray]:
    from skimage import data

    photos = [getattr(data, name)() for name in SKIMAGE_PHOTOS]
    for folder in CLEAN:
        photos += [read_image(path).pixels for path in sorted((DATA / folder).glob("*")) if path.is_file()]
    return [p[..., :3].astype(np.float32) / 255.0 for p in photos if p.ndim == 3]


def noise(draws: int, seed: int) -> None:
    for name, folder in REAL.items():
        paths = sorted((DATA / folder).glob("*"))
        profiles = [_profile(read_image(path).pixels[..., :3]) for path in paths if path.is_file()]
        print(_summary(f"real {name}", *zip(*profiles)))
    photos, rng = clean_photos(), np.random.default_rng(seed)
    measured, true, isos = [], [], []
    for _ in range(draws):
        photo = photos[int(rng.integers(len(photos)))]
        y, x = (int(rng.integers(s - 256 + 1)) for s in photo.shape[:2])
        camera = sample_camera(rng)
        noisy, clean = simulate(photo[y : y + 256, x : x + 256], rng, camera)
        measured.append(_profile(noisy))
        true.append(float(np.std(noisy - clean * 255.0)))
        isos.append(camera.iso)
    print(_summary("simulated (measured)", *zip(*measured)))
    print(_summary("simulated (true std)", true, [m[1] for m in measured]))
    sigmas, isos = np.array([m[0] for m in measured]), np.array(isos)
    for low, high in [(100, 400), (400, 1600), (1600, 6400), (6400, 12800)]:
        inside = (isos >= low) & (isos < high)
        print(f"  ISO {low:>5}-{high:<5}: measured sigma median {np.median(sigmas[inside]):5.2f} (n={inside.sum()})")


def speed(repeats: int, seed: int) -> None:
    photos, rng = clean_photos(), np.random.default_rng(seed)
    for size in (128, 256):
        crops = [p[:size, :size] for p in photos if min(p.shape[:2]) >= size]
        times = []
        for i in range(repeats):
            start = time.process_time()
            simulate(crops[i % len(crops)], rng)
            times.append(time.process_time() - start)
        print(f"simulate {size}x{size}: {1000 * np.median(times):.2f} ms CPU per crop (median of {repeats}, "
              f"mean {1000 * np.mean(times):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=200, help="simulated captures to measure")
    parser.add_argument("--repeats", type=int, default=200, help="timed crops per size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-noise", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not args.no_speed:
        speed(args.repeats, args.seed)
    if not args.no_noise:
        noise(args.draws, args.seed)


if __name__ == "__main__":
    main()
