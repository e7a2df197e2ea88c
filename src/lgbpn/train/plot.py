"""Training curves from a run's log.csv."""

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..errors import DataError  # noqa: E402
from ..io import atomic_path  # noqa: E402


def plot_run(run_dir: Path, output: Path | None = None) -> Path:
    log = Path(run_dir) / "log.csv"
    if not log.exists():
        raise DataError(f"{log}: no training log (is {run_dir} a run folder?)")
    with open(log, newline="") as fh:
        rows = list(csv.DictReader(fh))

    def series(key):
        pts = [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]
        return [p[0] for p in pts], [p[1] for p in pts]

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    panels = (("L1 loss (training target)", [("loss", None)]), ("learning rate", [("lr", None)]),
              ("validation PSNR (dB)", [("val_psnr", "network's own output"),
                                         ("val_psnr_corrected", "with the output corrections")]))
    for ax, (title, curves) in zip(axes, panels):
        for key, label in curves:
            x, y = series(key)
            if x:
                ax.plot(x, y, marker="." if len(x) < 30 else None, label=label)
        if any(label for _, label in curves):
            ax.legend(fontsize=8)
        ax.set_xlabel("step")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    output = Path(output) if output else Path(run_dir) / "curves.png"
    with atomic_path(output) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return output
