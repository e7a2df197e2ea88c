"""Plot `lgbpn bench` results: time and peak memory against image size, ours vs the reference path;
for a `--compare` run, PSNR against seconds per megapixel (the plot that run saves itself).

    python benchmarks/plot_bench.py bench.json bench.png
    python benchmarks/plot_bench.py compare.json compare.png
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lgbpn.bench.report import plot_compare  # noqa: E402

# (path, R3, line style): R3 off solid (ours) / dashed (reference), ours with R3 dotted.
SERIES = (("ours", False, "-o"), ("ours", True, ":^"), ("reference", False, "--s"))


def plot(result: dict, out: str) -> None:
    rows = result["rows"]
    models = list(dict.fromkeys(r["model"] for r in rows))
    colours = dict(zip(models, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, key, label in zip(axes, ("seconds", "peak_mb"), ("seconds (median)", "peak resident memory (MB)")):
        for model in models:
            for path, r3, style in SERIES:
                series = [r for r in rows if (r["model"], r["path"], r["r3"]) == (model, path, r3) and r[key]]
                measured = sorted((r["pixels"], r[key]) for r in series if not r.get("extrapolated"))
                if measured:
                    ax.plot(*zip(*measured), style, color=colours[model],
                            label=f"{model} {path}" + (" R3" if r3 else ""))
                guessed = [(r["pixels"], r[key]) for r in series if r.get("extrapolated")]
                if guessed:  # hollow: extrapolated, not measured
                    ax.plot(*zip(*guessed), style[-1], color=colours[model], mfc="none")
        ax.set(xscale="log", yscale="log", xlabel="image size", ylabel=label)
        sizes = dict(sorted((r["pixels"], r["size"]) for r in rows))
        ax.set_xticks(list(sizes), list(sizes.values()), fontsize=8)
        ax.minorticks_off()
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7)
    m = result["machine"]
    fig.suptitle(f"lgbpn bench: {m['cpu']}, {m['threads']} threads, torch {m['torch']}, {m['device']} "
                 f"(hollow = extrapolated)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: plot_bench.py BENCH.json OUT.png")
    with open(sys.argv[1]) as f:
        result = json.load(f)
    (plot_compare if "compare" in result else plot)(result, sys.argv[2])
