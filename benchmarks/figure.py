"""Comparison figure for docs/results.md: one crop per subset of ../shared/data, every method side by side.

    python benchmarks/figure.py --out benchmarks/results/comparison.png

Each row is a 256x256 region of one image (denoised as a 256x256 input), shown 2x zoomed on its
central 128x128 with the region's PSNR. Methods as in benchmarks/quality.py (R3 off, default
corrections); BM3D is skipped when the optional `bm3d` package is missing.
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from lgbpn.data.formats import discover
from lgbpn.metrics import psnr, to_uint8
from quality import DATA, SUBSETS, classical, ours

REGION, SHOW, ZOOM = 256, 128, 2
ROWS = (("sidd", 0), ("polyu", 3))  # (subset, image index): a flat-and-detail scene from each


def _methods() -> dict:
    methods = {"noisy": lambda x: x, "non-local means": classical("nlm")}
    try:
        import bm3d  # noqa: F401

        methods["BM3D"] = classical("bm3d")
    except ImportError:
        pass
    for label, spec in (("apbsn-s", "apbsn-s"), ("lgbpn-s, network alone", "lgbpn-s+raw"), ("lgbpn-s", "lgbpn-s"),
                        ("lgbpn-fast", "lgbpn-fast")):
        denoiser = ours(spec, [])
        methods[label] = lambda x, d=denoiser: d(x)
    return methods


def _tile(image: np.ndarray, label: str) -> np.ndarray:
    off = (REGION - SHOW) // 2
    crop = image[off : off + SHOW, off : off + SHOW].repeat(ZOOM, 0).repeat(ZOOM, 1)
    tile = Image.fromarray(np.ascontiguousarray(crop))
    draw = ImageDraw.Draw(tile)
    draw.rectangle((0, 0, SHOW * ZOOM, 14), fill=(0, 0, 0))
    draw.text((3, 2), label, fill=(255, 255, 255))
    return np.asarray(tile)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/comparison.png"))
    args = parser.parse_args()
    gap, rows, methods = 4, [], _methods()
    for subset, index in ROWS:
        sample = [s for s in discover(DATA / SUBSETS[subset]) if s.clean is not None][index]
        noisy, clean = sample.noisy(), sample.clean()
        y0, x0 = (noisy.shape[0] - REGION) // 2, (noisy.shape[1] - REGION) // 2
        noisy = np.ascontiguousarray(noisy[y0 : y0 + REGION, x0 : x0 + REGION])
        clean = np.ascontiguousarray(clean[y0 : y0 + REGION, x0 : x0 + REGION])
        tiles = []
        for name, fn in methods.items():
            out = to_uint8(fn(noisy))
            tiles.append(_tile(out, f"{name} {psnr(out, clean):.2f} dB"))
            print(f"{sample.name}: {name} {psnr(out, clean):.2f} dB", flush=True)
        tiles.append(_tile(clean, f"clean ({subset})"))
        row = np.full((SHOW * ZOOM, len(tiles) * (SHOW * ZOOM + gap) - gap, 3), 255, np.uint8)
        for i, tile in enumerate(tiles):
            row[:, i * (SHOW * ZOOM + gap) : i * (SHOW * ZOOM + gap) + SHOW * ZOOM] = tile
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    figure = np.full((sum(r.shape[0] for r in rows) + gap * (len(rows) - 1), width, 3), 255, np.uint8)
    y = 0
    for r in rows:
        figure[y : y + r.shape[0], : r.shape[1]] = r
        y += r.shape[0] + gap
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(figure).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
