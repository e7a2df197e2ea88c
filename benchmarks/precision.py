"""bf16 against fp32 on this machine, in one run: the shipped networks' inference (s/MP) and a training
step of each shipped recipe (crops/s), the two precisions interleaved so that drift in the machine's load
touches both alike.

    python benchmarks/precision.py --json benchmarks/results/precision.json

bf16 only pays where the CPU has native units (AMX, AVX512-BF16); `--precision auto` picks it only there.
"""

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from lgbpn import Denoiser, InferenceOptions
from lgbpn.bench.cases import Case, measure
from lgbpn.bench.harness import machine_info
from lgbpn.io import atomic_write_bytes
from lgbpn.precision import native_bf16
from lgbpn.synthetic import demo_image
from lgbpn.train.config import make_config, resolve_config_path

PRECISIONS = ("fp32", "bf16")


def _infer_seconds(name: str, precision: str, image: torch.Tensor) -> float:
    denoiser = Denoiser.from_pretrained(name, options=InferenceOptions(precision=precision, r3=False))
    denoiser(image[:256, :256])  # warm-up: oneDNN picks its kernels on the first call
    start = time.perf_counter()
    denoiser(image)
    return time.perf_counter() - start


def _interleaved(fn, rounds: int) -> dict[str, float]:
    """{precision: median of `rounds` calls fn(precision)}, fp32 and bf16 taking turns."""
    times = {p: [] for p in PRECISIONS}
    for _ in range(rounds):
        for precision in PRECISIONS:
            times[precision].append(fn(precision))
    return {p: statistics.median(t) for p, t in times.items()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/precision.json"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--megapixels", type=float, default=1.0, help="Inference image size")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # A photo with camera noise (the demo's), mirror-tiled to size: random pixels would be noise far beyond
    # the student's range, which it hands to its teacher.
    side = int((args.megapixels * 1e6) ** 0.5)
    noisy = demo_image()[1]
    image = np.pad(noisy, ((0, max(0, side - noisy.shape[0])), (0, max(0, side - noisy.shape[1])), (0, 0)),
                   mode="symmetric")[:side, :side]
    inference = {}
    for name in ("lgbpn-fast", "lgbpn-s"):
        seconds = _interleaved(lambda p, name=name: _infer_seconds(name, p, image), args.rounds)
        inference[name] = {f"seconds_per_mp_{p}": s / (side * side / 1e6) for p, s in seconds.items()}
        inference[name]["bf16_speedup"] = seconds["fp32"] / seconds["bf16"]
        print(f"{name} inference (R3 off): " + ", ".join(f"{p} {s / (side * side / 1e6):.3f} s/MP" for p, s in seconds.items())
              + f", bf16 {inference[name]['bf16_speedup']:.2f}x")
    training = {}
    for recipe in ("lgbpn-s", "lgbpn-fast"):
        config = make_config(resolve_config_path(recipe))
        case = Case("train", config.arch, height=config.crop, width=config.crop, batch=config.batch, repeats=3)

        def step(precision, case=case):
            return measure(replace(case, precision=precision), "cpu", args.threads)["seconds"]

        seconds = _interleaved(step, args.rounds)
        training[recipe] = {f"crops_per_s_{p}": config.batch / s for p, s in seconds.items()}
        training[recipe]["bf16_speedup"] = seconds["fp32"] / seconds["bf16"]
        print(f"{recipe} training step (batch {config.batch} of {config.crop}^2): "
              + ", ".join(f"{p} {config.batch / s:.1f} crops/s" for p, s in seconds.items())
              + f", bf16 {training[recipe]['bf16_speedup']:.2f}x")
    result = dict(machine=dict(machine_info(args.threads), native_bf16=native_bf16()),
                  inference_megapixels=side * side / 1e6, inference=inference, training=training,
                  note="the student's training step is timed with the blind-spot loss; distillation's L1 to "
                       "targets costs the same forward and backward")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.json, (json.dumps(result, indent=2) + "\n").encode())
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
