"""The results as a table for people and as JSON for tools (benchmarks/plot_bench.py, the README)."""

import json

from ..io import atomic_write_bytes


def fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def _si(value) -> str:
    if value is None:
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}"


# (header, width, cell): the rows table's columns; a negative width aligns left.
_COLUMNS = (
    ("model", -8, lambda r: r["model"]),
    ("path", -9, lambda r: r["path"]),
    ("size", 9, lambda r: r["size"]),
    ("R3", 3, lambda r: "on" if r["r3"] else "off"),
    ("tiles", 5, lambda r: fmt(r.get("tiles"), "d")),
    ("runs", 4, lambda r: str(r["runs"])),
    ("seconds", 9, lambda r: fmt(r["seconds"], ".3g") + ("*" if r.get("extrapolated") else "")),
    ("peak MB", 8, lambda r: fmt(r["peak_mb"], ".0f")),
    ("GPU MB", 7, lambda r: fmt(r.get("peak_gpu_mb"), ".0f")),
    ("MACs/px", 8, lambda r: _si(r["macs_per_pixel"])),
    ("eff", 5, lambda r: fmt(r["efficiency"], ".0%")),
    ("speedup", 7, lambda r: fmt(r.get("speedup"), ".1f")),
    ("mem x", 6, lambda r: fmt(r.get("memory_ratio"), ".1f")),
    ("note", -1, lambda r: r.get("note") or r.get("error") or ""),
)


def _training_note(t: dict) -> str:
    fp32, bf16 = t["crops_per_s"], t.get("crops_per_s_bf16")
    parts = [f"bf16 {bf16 / fp32:.2f}x fp32" if fp32 and bf16 else "",
             f"native bf16: {'yes' if t.get('native_bf16') else 'no'}",
             t.get("error", ""), f"bf16: {t['error_bf16']}" if "error_bf16" in t else ""]
    return "; ".join(p for p in parts if p)


_TRAINING_COLUMNS = (
    ("training", -8, lambda t: t["model"]),
    ("crop", 5, lambda t: str(t["crop"])),
    ("batch", 5, lambda t: str(t["batch"])),
    ("s/step", 8, lambda t: fmt(t["seconds_per_step"], ".3g")),
    ("crops/s", 8, lambda t: fmt(t["crops_per_s"], ".3g")),
    ("bf16 c/s", 8, lambda t: fmt(t.get("crops_per_s_bf16"), ".3g")),
    ("peak MB", 8, lambda t: fmt(t["peak_mb"], ".0f")),
    ("MACs/px", 8, lambda t: _si(t["macs_per_pixel"])),
    ("note", -1, _training_note),
)


def _line(cells) -> str:
    return " ".join(f"{text:<{-width}}" if width < 0 else f"{text:>{width}}" for text, width in cells).rstrip()


def _table(columns, records) -> list[str]:
    header = _line((name, width) for name, width, _ in columns)
    return [header, "-" * len(header)] + [_line((cell(r), width) for _, width, cell in columns) for r in records]


def format_table(result: dict) -> str:
    m, s = result["machine"], result["summary"]
    gpu = any("peak_gpu_mb" in r for r in result["rows"])
    lines = [(f"{m['cpu']}, {m['threads']} threads, torch {m['torch']}, {m['device']}: "
              f"matmul {m['matmul_gflops']:.1f} GFLOP/s; idle process {m['baseline_rss_mb']:.0f} MB; "
              f"weights {m['weights']}"), ""]
    lines += _table([c for c in _COLUMNS if gpu or c[0] != "GPU MB"], result["rows"])
    lines += [""] + _table(_TRAINING_COLUMNS, result["training"])
    lines += ["", (f"{s['model']} ({s['preset']}), {s['size']}, R3 off, reference / ours: time "
                   f"{fmt(s['speedup_256'], '.1f')}x, peak memory {fmt(s['memory_ratio_256'], '.1f')}x; "
                   f"max |ours - reference| {fmt(s['max_abs_diff_vs_reference'], '.2g')}; "
                   f"efficiency {fmt(s['efficiency'], '.0%')} of matmul at {s['efficiency_size'] or '-'}"),
              ("eff: counted multiply-adds x 2 / seconds / measured matmul FLOP/s; speedup, mem x: reference / ours; "
               "* extrapolated; bf16 c/s: training with bfloat16 autocast")]
    return "\n".join(lines)


def write_json(result: dict, path) -> None:
    atomic_write_bytes(path, (json.dumps(result, indent=2) + "\n").encode())


def _psnr_cells(values: dict) -> list[tuple]:
    return [(f"PSNR {subset}", 11, lambda r, s=subset: fmt(r["psnr"].get(s), ".2f")) for subset in values]


def _seconds(value) -> str:
    return fmt(value, ".0f" if value is not None and value >= 100 else ".3g")


def format_compare_table(result: dict) -> str:
    m, c = result["machine"], result["compare"]
    columns = (
        ("method", -10, lambda r: r["method"]),
        ("timed on", 9, lambda r: r["timed_size"] or "-"),
        ("s/MP", 8, lambda r: _seconds(r["seconds_per_mp"]) + ("*" if r["extrapolated"] else "")),
        ("photo s", 8, lambda r: _seconds(r["photo_seconds"])),
        ("peak MB", 8, lambda r: fmt(r["peak_mb"], ".0f")),
        *_psnr_cells(c["noisy_psnr"]),
        ("note", -1, lambda r: r["note"]),
    )
    noisy = ", ".join(f"{subset} {value:.2f} dB ({len(c['images'][subset])} images)"
                      for subset, value in c["noisy_psnr"].items())
    lines = [f"{m['cpu']}, {m['threads']} threads, load average {m['load_average'][0]} -> {m['load_average'][1]}; "
             f"idle process {m['baseline_rss_mb']:.0f} MB", f"photo: {c['photo']['source']}", f"noisy input: {noisy}",
             ""]
    lines += _table(columns, c["rows"])
    t = c["target"]
    lines += ["", f"target: `{t.get('command', 'lgbpn denoise')}` on the photo, {t['threads']} threads, "
                  f"weights {t.get('weights', '-')}"]
    if "error" in t:
        lines.append(f"  {t['error']}")
    else:
        for precision in ("fp32", "bf16"):
            run = t[precision]
            figures = (f"{fmt(run.get('seconds'), '.1f')} s ({fmt(run.get('seconds_per_mp'), '.2f')} s/MP), "
                       f"peak {fmt(run.get('peak_mb'), '.0f')} MB") if "seconds" in run else ""
            parts = (figures, run.get("note", ""), run.get("error", ""))
            lines.append(f"  {precision}: " + "; ".join(p for p in parts if p))
        lines.append(f"  default precision {t['precision']}: OpenCV {fmt(t['opencv_seconds'], '.1f')} s; "
                     f"no slower than OpenCV: {fmt(t['no_slower_than_opencv'], '')}; "
                     f"peak under 2 GB: {fmt(t['peak_under_2gb'], '')}")
    if "note" in t:
        lines.append(f"  {t['note']}")
    lines += _pipeline_lines(c.get("pipeline"))
    lines.append("* extrapolated from the crop to the photo (see definitions.photo_work_ratio)")
    return "\n".join(lines)


def _pipeline_lines(p: dict | None) -> list[str]:
    """The whole pipeline against OpenCV's (compare.pipeline), and one photo's stages."""
    if not p:
        return []
    lines = ["", f"pipeline against OpenCV's loop (imread, NLM, imwrite), whole processes, {p.get('threads')} threads:"]
    if "note" in p:
        return [*lines, f"  {p['note']}"]
    for key, what in (("png", "one photo as PNG"), ("folder", f"a folder of {p['photos']} JPEG photos")):
        run = p[key]
        errors = "; ".join(run[name]["error"] for name in ("ours", "opencv") if "error" in run[name])
        lines.append(f"  {what}: ours {fmt(run['ours'].get('seconds'), '.1f')} s (peak {fmt(run['ours'].get('peak_mb'), '.0f')}"
                     f" MB), OpenCV {fmt(run['opencv'].get('seconds'), '.1f')} s; ratio {fmt(run['ratio'], '.2f')}"
                     + (f"; {errors}" if errors else ""))
    lines.append("  one photo's stages (s): " + ", ".join(f"{name} {fmt(value, '.2f') if isinstance(value, float) else value}"
                                                     for name, value in p["stages"].items()))
    return lines


def plot_compare(result: dict, path) -> None:
    """PSNR against seconds per megapixel, one panel per subset; methods without PSNR as vertical lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m, c = result["machine"], result["compare"]
    rows = [r for r in c["rows"] if r["seconds_per_mp"]]
    colours = dict(zip([r["method"] for r in c["rows"]], plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    subsets = list(c["noisy_psnr"])
    fig, axes = plt.subplots(1, len(subsets), figsize=(6 * len(subsets), 4.5), squeeze=False)
    for ax, subset in zip(axes[0], subsets):
        for r in rows:
            value, colour = r["psnr"].get(subset), colours[r["method"]]
            if value is None:  # timed but not scored: where it would sit on the time axis
                ax.axvline(r["seconds_per_mp"], color=colour, ls=":", label=f"{r['method']} (time only)")
            else:
                ax.plot(r["seconds_per_mp"], value, "o", color=colour, mfc="none" if r["extrapolated"] else colour,
                        ms=8, label=r["method"])
                ax.annotate(r["method"], (r["seconds_per_mp"], value), textcoords="offset points", xytext=(6, 4),
                            fontsize=7)
        for precision in ("fp32", "bf16"):
            if c["target"].get(precision, {}).get("seconds_per_mp"):
                ax.axvline(c["target"][precision]["seconds_per_mp"], color="black", ls="-." if precision == "fp32"
                           else "--", lw=1, label=f"lgbpn denoise end to end, {precision}")
        ax.axhline(c["noisy_psnr"][subset], color="grey", ls="--", lw=1, label="noisy input")
        ax.set(xscale="log", xlabel="seconds per megapixel (log)", ylabel="PSNR (dB)",
               title=f"{subset}, {len(c['images'][subset])} image(s)")
        ax.grid(True, alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"lgbpn bench --compare: {m['cpu']}, {m['threads']} threads; photo {c['photo']['size']} "
                 "(hollow = time extrapolated from a crop)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
