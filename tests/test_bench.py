"""`lgbpn bench`: the quick run end to end, and the full run's bookkeeping with fake measurements."""

import json

import torch
from click.testing import CliRunner

from lgbpn import bench
from lgbpn.bench import QUICK_SIZE, bench_command


def test_quick_bench_writes_the_json_contract(tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(bench_command, ["--quick", "--threads", "2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "speedup" in result.output

    data = json.loads(out.read_text())
    assert {"cpu", "threads", "torch", "matmul_gflops", "weights"} <= data["machine"].keys()
    assert data["machine"]["matmul_gflops"] > 0
    rows = data["rows"]
    assert rows
    for row in rows:
        assert {"model", "path", "size", "r3", "seconds", "peak_mb", "macs_per_pixel"} <= row.keys()
        assert row["path"] in ("ours", "reference")
        assert row["macs_per_pixel"] > 0
    size = f"{QUICK_SIZE}x{QUICK_SIZE}"
    lgbpn = {(r["path"], r["r3"]) for r in rows if r["model"] == "lgbpn" and r["size"] == size}
    assert {("ours", False), ("reference", False)} <= lgbpn
    assert all(r["seconds"] > 0 and r["peak_mb"] > 0 for r in rows if r["path"] == "ours")
    assert {r["model"] for r in rows} == {"lgbpn", "lgbpn-s", "apbsn"}
    assert data["training"] and all(t["crops_per_s"] > 0 for t in data["training"])

    summary = data["summary"]
    assert {"speedup_256", "memory_ratio_256", "efficiency", "max_abs_diff_vs_reference"} <= summary.keys()
    assert summary["max_abs_diff_vs_reference"] < 1e-3
    assert summary["speedup_256"] > 0 and summary["memory_ratio_256"] > 0
    assert 0 < summary["efficiency"] < 2


def test_full_run_logic_without_measuring(monkeypatch):
    """Reference rows it cannot run, the photo's extrapolated R3 row, ratios and summary, with fake
    measurements (no processes, multiply-adds still counted): the parts only the full run reaches."""
    def fake_isolated(case, device, threads):
        if case.kind == "matmul":
            return {"gflops": 100.0, "peak_mb": 200.0}
        if case.kind == "r3_ratio":
            return {"ratio": 9.0, "peak_mb": 300.0}
        reference = case.path == "reference"
        result = {"seconds": 10.0 if reference else 2.0, "peak_mb": 1200.0 if reference else 300.0, "runs": 1}
        if case.keep_output:
            result["output"] = torch.full((1, 3, case.height, case.width), 0.5 if reference else 0.0)
        return result

    monkeypatch.setattr(bench, "_isolated", fake_isolated)
    monkeypatch.setattr(bench, "REFERENCE_MAX_PIXELS", 64 * 64)
    monkeypatch.setattr(bench, "PHOTO", (96, 160))
    monkeypatch.setattr(bench, "RATIO_TILE", 64)
    data = bench.run_benchmark(sizes=[64, 96], models=["lgbpn-s", "apbsn"], log=lambda message: None)

    rows = {(r["model"], r["path"], r["size"], r["r3"]): r for r in data["rows"]}
    assert rows["apbsn", "ours", "64x64", False]["speedup"] == 5.0
    assert rows["apbsn", "ours", "64x64", False]["memory_ratio"] == 4.0
    skipped = rows["apbsn", "reference", "96x96", False]
    assert skipped["seconds"] is None and "not run" in skipped["note"] and "GB" in skipped["note"]
    photo_on = rows["lgbpn-s", "ours", "160x96", True]
    assert photo_on["extrapolated"] and photo_on["seconds"] == 18.0
    assert photo_on["macs_per_pixel"] > rows["lgbpn-s", "ours", "160x96", False]["macs_per_pixel"]
    assert [t["model"] for t in data["training"]] == ["lgbpn-s", "apbsn"]
    summary = data["summary"]
    assert summary["model"] == "lgbpn-s" and summary["speedup_256"] == 5.0
    assert summary["max_abs_diff_vs_reference"] == 0.5
    assert summary["efficiency"] > 0
    assert "extrapolated" in bench.format_table(data)
