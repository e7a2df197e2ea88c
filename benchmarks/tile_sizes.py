"""The shipped student on a 12 MP photo at several tile sizes, in one run: how much of the network's time
the tiles' overlaps cost, and the peak memory each tile size needs (options.STUDENT_TILE is chosen here).

    python benchmarks/tile_sizes.py --json benchmarks/results/tile_sizes.json

Each tile size runs in a process of its own (its peak memory its own), the sizes taking turns over the
rounds so that drift in the machine's load touches them alike; medians are printed.
"""

import argparse
import json
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from lgbpn.bench.harness import machine_info, run_isolated
from lgbpn.io import atomic_write_bytes

TILES = (672, 840, 1008, 1344)
PHOTO = (3000, 4000)  # (H, W): a 12-megapixel photo


def photo() -> np.ndarray:
    """The demo's noisy astronaut (camera noise simulated on a Bayer mosaic), mirror-tiled to PHOTO."""
    from lgbpn.synthetic import demo_image

    noisy = demo_image()[1]
    reps = (-(-PHOTO[0] // noisy.shape[0]), -(-PHOTO[1] // noisy.shape[1]), 1)
    flips = np.concatenate([noisy, noisy[::-1]], 0)
    flips = np.concatenate([flips, flips[:, ::-1]], 1)
    return np.ascontiguousarray(np.tile(flips, reps)[: PHOTO[0], : PHOTO[1]])


def denoise_at(tile: int, threads: int) -> dict:
    """One photo through the default denoiser at `tile` (in a process of its own)."""
    from lgbpn import Denoiser
    from lgbpn.tiling import plan_tiles

    torch.set_num_threads(threads)
    image = photo()
    denoiser = Denoiser.from_pretrained(tile=tile)
    denoiser.denoise_pixels(image[:64, :64])  # warm-up, not timed
    denoiser.stage_seconds.clear()
    start = time.perf_counter()
    denoiser.denoise_pixels(image)
    seconds = time.perf_counter() - start
    rows, cols = plan_tiles(denoiser.model, *PHOTO, tile)
    work = sum(r[1] - r[0] for r in rows) * sum(c[1] - c[0] for c in cols) / (PHOTO[0] * PHOTO[1])
    return dict(tiles=len(rows) * len(cols), work_ratio=round(work, 3), seconds=seconds,
                network_seconds=denoiser.stage_seconds["network"],
                peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/tile_sizes.json"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    runs = {tile: [] for tile in TILES}
    for _ in range(args.rounds):
        for tile in TILES:
            runs[tile].append(run_isolated(denoise_at, tile, args.threads))
    result = {}
    for tile, measured in runs.items():
        row = {key: measured[0][key] for key in ("tiles", "work_ratio")}
        row.update({key: round(statistics.median(m[key] for m in measured), 3)
                    for key in ("seconds", "network_seconds", "peak_mb")})
        result[tile] = row
        print(f"tile {tile:5d}: {row['tiles']:3d} tiles, {row['work_ratio']:.3f}x the photo's pixels through the network; "
              f"denoise {row['seconds']:.2f} s (network {row['network_seconds']:.2f} s), peak {row['peak_mb']:.0f} MB")
    output = dict(machine=machine_info(args.threads), photo=f"{PHOTO[1]}x{PHOTO[0]} (the demo's noisy photo, mirror-tiled)",
                  rounds=args.rounds, statistic="median", tiles=result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.json, (json.dumps(output, indent=2) + "\n").encode())
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
