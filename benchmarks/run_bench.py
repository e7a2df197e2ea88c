"""Speed and memory benchmark, the same as `lgbpn bench`; saves to benchmarks/results/bench.json
(--compare: compare.json and compare.png).

    python benchmarks/run_bench.py [--quick] [--device cpu|cuda] [--json FILE] [--sizes 256,512] ...
    python benchmarks/plot_bench.py benchmarks/results/bench.json benchmarks/results/bench.png
    python benchmarks/run_bench.py --compare [--compare-images N|all]
"""

import sys
from pathlib import Path

from lgbpn.bench.command import bench_command

if __name__ == "__main__":  # the benchmark's worker processes import this file too
    name = "compare.json" if "--compare" in sys.argv else "bench.json"
    bench_command(default_map={"json_path": str(Path(__file__).with_name("results") / name)})
