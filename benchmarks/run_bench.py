"""Speed and memory benchmark, the same as `lgbpn bench`; saves to benchmarks/results/bench.json.

    python benchmarks/run_bench.py [--quick] [--device cpu|cuda] [--json FILE] [--sizes 256,512] ...
    python benchmarks/plot_bench.py benchmarks/results/bench.json benchmarks/results/bench.png
"""

from pathlib import Path

from lgbpn.bench import bench_command

if __name__ == "__main__":  # the benchmark's worker processes import this file too
    bench_command(default_map={"json_path": str(Path(__file__).with_name("results") / "bench.json")})
