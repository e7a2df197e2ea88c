"""Does the self-supervised score rank denoisers as PSNR against clean references does?

On the dev sets (every image has a clean reference, which only this benchmark reads), each candidate
denoises each noisy image (its central crop); it is scored by PSNR to the clean image and by the
self-supervised score of `lgbpn.selfscore` (its error against second noisy views, the shipped
student's residual as the noise sample, as `--keep-base` and the held-out selection use it). Prints,
per set, both scores of each candidate, the Spearman rank correlation of their means over the
candidates, the mean per-image Spearman, and how often the score orders two candidates on one image
as PSNR does (all pairs; and the pairs that differ by at least 0.1 dB); and per candidate, on how many images
the score orders it and the shipped student as PSNR does (the decision `--keep-base` makes).

Candidates: the noisy input, the shipped student (alone and with its guard), the student mixed with
its input (under-denoising) and blurred (over-smoothing), and any weights given with --weights
(e.g. an adapted student, or checkpoints of a run).

    python benchmarks/selfscore.py [--weights runs/x/best.safetensors ...] [--crop 256] [--noise-scale 1.5] [--json FILE]
    python benchmarks/selfscore.py --per-photo 1.0 ...      # another factor of each photo's own scale (see --help)
"""

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from lgbpn import Denoiser
from lgbpn.data.formats import centre_crop, discover
from lgbpn.layout import to_channels_first, to_channels_last
from lgbpn.metrics import psnr
from lgbpn.nn.lowpass import gaussian_blur
from lgbpn.noise import residual_share
from lgbpn.scale import to_model_scale
from lgbpn.selfscore import SHARE_FACTOR, error_db, noise_samples, view_error

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def candidates(weights: list[Path]) -> dict:
    student = Denoiser.from_pretrained(precision="fp32")
    alone = Denoiser.from_pretrained(precision="fp32", guard=False)
    found = {
        "noisy input": lambda v: v,
        "lgbpn-fast": student.denoise_batch,
        "lgbpn-fast alone": alone.denoise_batch,
        "lgbpn-fast, 1/4 input": lambda v: 0.75 * student.denoise_batch(v) + 0.25 * v,
        "lgbpn-fast, 1/2 input": lambda v: 0.5 * student.denoise_batch(v) + 0.5 * v,
        "lgbpn-fast blurred 0.7": lambda v: gaussian_blur(student.denoise_batch(v), 0.7),
        "lgbpn-fast blurred 1.5": lambda v: gaussian_blur(student.denoise_batch(v), 1.5),
    }
    for path in weights:
        found[str(path)] = Denoiser.from_weights(path, precision="fp32", keep_base=False).denoise_batch
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, nargs="*", default=[])
    parser.add_argument("--sets", default="polyu,sidd_samples")
    parser.add_argument("--every", type=int, default=2, help="Every n-th image of each set.")
    parser.add_argument("--crop", type=int, default=256, help="Central crop scored (0: whole images).")
    parser.add_argument("--noise-scale", type=float, help="One scale of the reference residual for every photo (default: "
                        "each photo's own, selfscore.sample_scale)")
    parser.add_argument("--per-photo", type=float, metavar="FACTOR",
                        help="Each photo's residual scaled by FACTOR / noise.residual_share (the share of the noise that the "
                             "residual holds on the photo's flat blocks; the default's factor is selfscore.SHARE_FACTOR)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = candidates(args.weights)
    shipped = models["lgbpn-fast"]
    report = {}
    for name in args.sets.split(","):
        rows = []  # per image: {candidate: (psnr, score)}
        for sample in discover(DATA / name)[:: args.every]:
            noisy, clean = sample.noisy(), sample.clean()
            if args.crop:
                noisy, clean = centre_crop(noisy, args.crop), centre_crop(clean, args.crop)
            x = to_channels_first(to_model_scale(noisy))[None]
            with torch.inference_mode():
                reference = shipped(x)
                scale = args.per_photo / residual_share(x[0], (x - reference)[0]) if args.per_photo else args.noise_scale
                samples = noise_samples(x, reference, scale)
                rows.append({m: (psnr(to_channels_last(f(x)[0]), to_model_scale(clean)), error_db(view_error(f, x, samples)))
                             for m, f in models.items()})
        means = {m: tuple(float(np.mean([r[m][i] for r in rows])) for i in (0, 1)) for m in models}
        overall = spearmanr([v[0] for v in means.values()], [v[1] for v in means.values()])[0]
        per_image = float(np.mean([spearmanr([r[m][0] for m in models], [r[m][1] for m in models])[0] for r in rows]))
        agree, agree_clear = [], []
        for r in rows:
            for a, b in itertools.combinations(models, 2):
                same = (r[a][0] > r[b][0]) == (r[a][1] > r[b][1])
                agree.append(same)
                if abs(r[a][0] - r[b][0]) >= 0.1:
                    agree_clear.append(same)
        versus = {m: float(np.mean([(r[m][0] > r["lgbpn-fast"][0]) == (r[m][1] > r["lgbpn-fast"][1]) for r in rows]))
                  for m in models if m != "lgbpn-fast"}
        factor = args.per_photo or SHARE_FACTOR
        scaled = args.noise_scale or f"{factor} / the residual's share, per photo"
        print(f"\n{name}: {len(rows)} images ({args.crop or 'whole'} crops), noise sample scale {scaled}; "
              "candidate: PSNR / self-supervised score (dB) / images on which the score orders it and lgbpn-fast as PSNR does")
        for m, (p, s) in sorted(means.items(), key=lambda kv: -kv[1][0]):
            print(f"  {m:40s} {p:7.3f} / {s:7.3f}" + (f" / {versus[m]:.0%}" if m in versus else ""))
        print(f"  Spearman over the candidates' means {overall:.3f}; per image {per_image:.3f}; pairs ordered as by "
              f"PSNR {np.mean(agree):.1%} (differing by >= 0.1 dB: {np.mean(agree_clear):.1%} of {len(agree_clear)})")
        report[name] = dict(images=len(rows), noise_scale=args.noise_scale, per_photo=None if args.noise_scale else factor,
                            means=means, versus_shipped=versus,
                            spearman_means=overall, spearman_per_image=per_image,
                            pairs_agree=float(np.mean(agree)), pairs_agree_clear=float(np.mean(agree_clear)))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
