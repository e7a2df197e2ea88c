"""The `--adapt` route on photos of chosen cameras, scored against their clean references.

Leave-camera-out dev protocol (issue 23): the noisy photos whose names hold a camera (PolyU NikonD800
and Sony by default) are copied into a folder of their own, with no clean file beside them, and
`lgbpn denoise photos/ -o out/ --adapt N` runs on it as a user would (timed). Then, in the same run,
against the clean references: the noisy input, the starting student (the default model, or `--weights`:
a student that never saw these cameras, for an honest leave-camera-out start), the adapted student
alone (`--no-keep-base`) and the route's output (keeping the starting student where it scores better),
each computed in memory (the route's files are JPEGs like their inputs).

    python benchmarks/adapt_route.py --adapt 50 [--cameras NikonD800,Sony] [--weights STUDENT] [--json FILE]
        [--ensemble 8] [--route self|teacher]

With `--ensemble N` the route runs `lgbpn denoise --adapt N --ensemble N`, the adapted student and the route's output
are scored with it, and the start both as the default (without) and with it (`start_ensemble`).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lgbpn import Denoiser
from lgbpn.adapt import ADAPTED_WEIGHTS
from lgbpn.io import read_image
from lgbpn.metrics import psnr

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "polyu"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapt", type=int, default=50)
    parser.add_argument("--cameras", default="NikonD800,Sony")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--weights", type=Path, help="the student to start from (default: the shipped one)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ensemble", type=int, default=1, help="the route's self-ensemble (`lgbpn denoise --ensemble`)")
    parser.add_argument("--route", default="self", help="how the student adapts (`lgbpn denoise --adapt-route`)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", type=Path, help="keep the route's folder (photos, outputs, adapted weights) here")
    args = parser.parse_args()
    cameras = args.cameras.split(",")
    names = sorted(p.name for p in (args.data / "noisy").iterdir() if any(c in p.name for c in cameras))
    work = args.keep or Path(tempfile.mkdtemp(prefix="adapt-route-"))
    photos, out = work / "photos", work / "out"
    photos.mkdir(parents=True)
    for name in names:
        shutil.copy(args.data / "noisy" / name, photos / name)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    began = time.perf_counter()
    start_from = ["--weights", str(args.weights)] if args.weights else []
    subprocess.run([sys.executable, "-m", "lgbpn", "denoise", str(photos), "-o", str(out), "--adapt", str(args.adapt),
                    "--ensemble", str(args.ensemble), "--adapt-route", args.route, *start_from], check=True, env=env)
    seconds = time.perf_counter() - began

    import torch

    torch.set_num_threads(args.threads)
    def starting(**options):
        return Denoiser.from_weights(args.weights, **options) if args.weights else Denoiser.from_pretrained(**options)

    denoisers = dict(start=starting(),
                     adapted_alone=Denoiser.from_weights(out / ADAPTED_WEIGHTS, keep_base=False, ensemble=args.ensemble),
                     # the route's output before it is encoded (JPEG here)
                     route=Denoiser.from_weights(out / ADAPTED_WEIGHTS, ensemble=args.ensemble))
    if args.ensemble > 1:
        denoisers["start_ensemble"] = starting(ensemble=args.ensemble)
    rows = []
    for name in names:
        noisy, clean = read_image(photos / name).pixels, read_image(args.data / "clean" / name).pixels
        rows.append(dict(image=name, noisy=psnr(noisy, clean), **{k: psnr(d(noisy), clean) for k, d in denoisers.items()}))
    means = {k: float(np.mean([r[k] for r in rows])) for k in ("noisy", *denoisers)}
    worse = sum(r["route"] < r["start"] - 0.005 for r in rows)
    print(f"{len(rows)} photos of {', '.join(cameras)}; --adapt {args.adapt}: {seconds / 60:.1f} min "
          f"({os.getloadavg()[0]:.1f} load average at the end)")
    for key, value in means.items():
        print(f"  {key:14s} {value:.3f} dB ({value - means['start']:+.3f} vs the start)")
    print(f"  route below the starting student on {worse} of {len(rows)} photos")
    if args.json:
        args.json.write_text(json.dumps(dict(adapt=args.adapt, ensemble=args.ensemble, route=args.route, cameras=cameras,
                                             start=str(args.weights or "shipped"),
                                             minutes=seconds / 60, means=means, route_below_start=worse, rows=rows), indent=1))
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
