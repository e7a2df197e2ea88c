"""`lgbpn bench`: the quick run end to end, the full run's bookkeeping with fake measurements, and the
comparison with other denoisers (--compare) in its quick configuration on tiny images."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from lgbpn import Denoiser, InferenceOptions, precision
from lgbpn.bench import alternatives, compare, harness
from lgbpn.bench.command import bench_command
from lgbpn.bench.plan import QUICK_COMPARE_PLAN, QUICK_SIZE, Method
from lgbpn.bench.report import format_table
from lgbpn.metrics import psnr


@pytest.mark.slow
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
    assert data["training"] and all(t["crops_per_s"] > 0 and t["crops_per_s_bf16"] > 0 for t in data["training"])
    assert all(isinstance(t["native_bf16"], bool) for t in data["training"])
    assert "native bf16: " in result.output

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
        if case.kind == "train":
            result["seconds"] = {"fp32": 2.0, "bf16": 8.0}[case.precision]
        return result

    monkeypatch.setattr(harness, "_isolated", fake_isolated)
    monkeypatch.setattr(harness, "REFERENCE_MAX_PIXELS", 64 * 64)
    monkeypatch.setattr(harness, "PHOTO", (96, 160))
    monkeypatch.setattr(harness, "RATIO_TILE", 64)
    monkeypatch.setattr(harness, "native_bf16", lambda device: False)
    data = harness.run_benchmark(sizes=[64, 96], models=["lgbpn-s", "apbsn"])

    rows = {(r["model"], r["path"], r["size"], r["r3"]): r for r in data["rows"]}
    assert rows["apbsn", "ours", "64x64", False]["speedup"] == 5.0
    assert rows["apbsn", "ours", "64x64", False]["memory_ratio"] == 4.0
    skipped = rows["apbsn", "reference", "96x96", False]
    assert skipped["seconds"] is None and "not run" in skipped["note"] and "GB" in skipped["note"]
    photo_on = rows["lgbpn-s", "ours", "160x96", True]
    assert photo_on["extrapolated"] and photo_on["seconds"] == 18.0
    assert photo_on["macs_per_pixel"] > rows["lgbpn-s", "ours", "160x96", False]["macs_per_pixel"]
    assert [t["model"] for t in data["training"]] == ["lgbpn-s", "apbsn"]
    training = data["training"][0]
    assert training["crops_per_s"] == training["batch"] / 2 and training["crops_per_s_bf16"] == training["batch"] / 8
    assert training["native_bf16"] is False
    summary = data["summary"]
    assert summary["model"] == "lgbpn-s" and summary["speedup_256"] == 5.0
    assert summary["max_abs_diff_vs_reference"] == 0.5
    assert summary["efficiency"] > 0
    table = format_table(data)
    assert "extrapolated" in table and "bf16 0.25x fp32; native bf16: no" in table


def test_other_commands_do_not_import_the_harness():
    heavy = ("lgbpn.bench.harness", "lgbpn.bench.cases", "lgbpn.bench.compare", "lgbpn.bench.alternatives")
    code = f"import sys, lgbpn.cli; sys.exit(any(m in sys.modules for m in {heavy}))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def _pairs(folder, count, side, seed):
    """`count` noisy/clean PNG pairs: a smooth scene, and it with Gaussian noise (sigma 20 levels)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side]
    for i in range(count):
        scene = 128 + 60 * np.sin((yy + 7 * i) / 6) * np.cos(xx / 9)
        clean = np.repeat(scene[..., None], 3, axis=-1).astype(np.uint8)
        noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
        for kind, pixels in (("noisy", noisy), ("clean", clean)):
            (folder / kind).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(folder / kind / f"img_{i}.png")


def _pair(folder, name="img_0.png"):
    return tuple(np.asarray(Image.open(folder / kind / name)) for kind in ("noisy", "clean"))


def test_spread_takes_first_last_and_evenly_between():
    names = [f"n{i}" for i in range(9)]
    assert compare.spread(names[::-1], 3) == ["n0", "n4", "n8"]
    assert compare.spread(names, 1) == ["n0"]
    assert compare.spread(names, None) == compare.spread(names, 20) == names


@pytest.mark.slow
def test_compare_quick_run_rows_target_json_and_plot(tmp_path, monkeypatch):
    """The comparison end to end on tiny images: a shipped network scored, an unshipped one timed
    only, a missing alternative reported as missing, `lgbpn denoise` timed in a child process."""
    data = tmp_path / "data"
    _pairs(data / "sidd_samples", 1, 40, seed=0)
    _pairs(data / "polyu", 3, 40, seed=1)
    unshipped = "lgbpn-test-unshipped"
    methods = (
        Method("student", "network", "stand-in: a student not shipped", model=unshipped, arch="apbsn-s"),
        Method("teacher", "network", "lgbpn-s, R3 off", model="lgbpn-s", arch="lgbpn-s", on_crop=True),
        Method("opencv-nlm", "opencv", "not installed here", module="lgbpn_test_absent", package="absent-package"),
    )
    monkeypatch.setattr(compare, "COMPARE_METHODS", methods)
    monkeypatch.setattr(compare, "STUDENT", unshipped)
    child_precision = precision.resolve_precision("auto")  # the measuring processes' (unpatched) default
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": False)
    out = tmp_path / "compare.json"
    result = CliRunner().invoke(bench_command, ["--compare", "--quick", "--compare-images", "2", "--data", str(data),
                                                "--json", str(out)])
    assert result.exit_code == 0, result.output

    data_json = json.loads(out.read_text())
    machine, c = data_json["machine"], data_json["compare"]
    assert machine["threads"] == 2 and machine["native_bf16"] is False and machine["baseline_rss_mb"] > 0
    height, width = QUICK_COMPARE_PLAN.photo
    assert c["photo"]["size"] == f"{width}x{height}" and c["photo"]["source"].startswith("polyu/noisy/img_0.png")
    assert c["images"] == {"sidd": ["img_0.png"], "polyu": ["img_0.png", "img_2.png"]}
    rows = {r["method"]: r for r in c["rows"]}
    assert list(rows) == ["student", "teacher", "opencv-nlm"]

    student = rows["student"]
    assert student["weights"] == "random apbsn-s (timing only)" and "not shipped" in student["note"]
    assert student["timed_size"] == f"{width}x{height}" and student["photo_work_ratio"] == 1
    assert student["seconds_per_mp"] > 0 and student["psnr"] == {"sidd": None, "polyu": None}

    teacher = rows["teacher"]
    crop = QUICK_COMPARE_PLAN.crop
    assert teacher["weights"] == "shipped lgbpn-s" and teacher["extrapolated"] and teacher["peak_mb"] > 0
    assert teacher["timed_size"] == f"{crop}x{crop}"
    assert teacher["photo_work_ratio"] == pytest.approx(width * height / crop**2)  # one tile each, no overlap
    assert teacher["photo_seconds"] == pytest.approx(teacher["timed_seconds"] * teacher["photo_work_ratio"])
    denoiser = Denoiser.from_pretrained("lgbpn-s", options=InferenceOptions(r3=False, precision=child_precision))
    for subset, folder in (("sidd", "sidd_samples"), ("polyu", "polyu")):
        pairs = [_pair(data / folder, name) for name in c["images"][subset]]
        expected = np.mean([psnr(denoiser(noisy), clean) for noisy, clean in pairs])
        assert teacher["psnr"][subset] == pytest.approx(expected, abs=0.01)
    assert c["noisy_psnr"]["sidd"] == pytest.approx(psnr(*_pair(data / "sidd_samples")))

    missing = rows["opencv-nlm"]
    assert missing["installed"] is False and "not installed (pip install absent-package" in missing["note"]
    assert missing["seconds_per_mp"] is None and missing["psnr"] == {"sidd": None, "polyu": None}

    target = c["target"]
    assert target["command"] == "lgbpn denoise photo.jpg -o out.jpg --weights apbsn-s-random.safetensors"
    assert target["fp32"]["seconds"] > 0 and target["fp32"]["peak_mb"] > machine["baseline_rss_mb"] / 2
    assert "no bf16 units" in target["bf16"]["note"] and target["precision"] == "fp32"
    assert target["opencv_seconds"] is None and target["no_slower_than_opencv"] is None
    assert target["peak_under_2gb"] is True
    assert "not installed" in result.output and "no slower than OpenCV: -" in result.output
    with Image.open(out.with_suffix(".png")) as plot:
        assert plot.width > 500 and plot.height > 300


def test_compare_target_survives_a_default_precision_run_that_failed(tmp_path, monkeypatch):
    """Where auto picks bf16 and that run fails, the target has no time and no verdict, and fp32 still shows."""
    runs = {"fp32": {"seconds": 2.0, "peak_mb": 900.0}, "bf16": {"error": "worker process died", "peak_mb": None}}
    monkeypatch.setattr(compare, "run_isolated", lambda fn, command, threads: dict(runs[command[-1]]))
    target = compare._target(tmp_path / "photo.jpg", tmp_path, {compare.STUDENT}, 2, 3.0, 4.0, "bf16")
    assert target["precision"] == "bf16" and target["bf16"]["error"] == "worker process died"
    assert target["fp32"]["seconds_per_mp"] == 0.5
    assert target["no_slower_than_opencv"] is None and target["peak_under_2gb"] is None
    fp32_default = compare._target(tmp_path / "photo.jpg", tmp_path, {compare.STUDENT}, 2, 3.0, 4.0, "fp32")
    assert "not run" in fp32_default["bf16"]["note"] and fp32_default["no_slower_than_opencv"] is True


@pytest.mark.parametrize("kind, module", [("opencv", "cv2"), ("oidn", "pyoidn"),
                                          pytest.param("bm3d", "bm3d", marks=pytest.mark.slow)])
def test_alternatives_denoise_as_their_users_run_them(tmp_path, kind, module):
    pytest.importorskip(module)
    _pairs(tmp_path, 1, 64, seed=2)
    noisy, clean = _pair(tmp_path)
    denoise, work = alternatives.build(Method(kind, kind, ""), trained=False, threads=2)
    out = denoise(noisy)
    assert out.dtype == np.uint8 and out.shape == noisy.shape and work(30, 40) == 1200
    assert psnr(out, clean) > psnr(noisy, clean) + 1


def test_compare_refuses_the_main_runs_options_and_missing_data(tmp_path):
    for args in (["--compare", "--sizes", "64"], ["--compare", "--device", "cuda"], ["--plot", "x.png"],
                 ["--compare", "--compare-images", "0"], ["--compare", "--data", str(tmp_path)]):
        result = CliRunner().invoke(bench_command, args)
        assert result.exit_code == 2, (args, result.output)
    assert "sidd_samples, polyu" in result.output


@pytest.mark.slow
def test_compare_pipeline_times_ours_and_opencvs_loops_and_the_stages(tmp_path):
    """The whole pipeline against OpenCV's, whole processes, on tiny photos: one PNG, a folder of JPEGs, and
    one photo's stages (with random student weights, as where the student is not shipped)."""
    pytest.importorskip("cv2")
    from lgbpn.bench.plan import FOLDER_PHOTOS
    from lgbpn.bench.report import _pipeline_lines

    data = tmp_path / "data"
    _pairs(data / "polyu", 3, 40, seed=1)
    images = compare._images(data, None)
    result = compare._pipeline(images, QUICK_COMPARE_PLAN, tmp_path, shipped=set(), threads=1)
    assert result["photos"] == FOLDER_PHOTOS and result["weights"].startswith("random unet-half")
    for key in ("png", "folder"):
        run = result[key]
        assert "error" not in run["ours"] and "error" not in run["opencv"], run
        assert run["ratio"] == pytest.approx(run["ours"]["seconds"] / run["opencv"]["seconds"])
    pipeline = tmp_path / "pipeline"
    assert sorted(p.name for p in (pipeline / "ours").iterdir()) == sorted(p.name for p in (pipeline / "opencv").iterdir())
    assert len(list((pipeline / "ours").iterdir())) == FOLDER_PHOTOS
    assert (pipeline / "ours.png").exists() and (pipeline / "opencv.png").exists()
    stages = result["stages"]
    assert list(stages) == ["start_up", "decode", "network", "corrections", "encode", "conversions"]
    assert stages["network"] > 0 and all(value >= 0 for value in stages.values()) and stages["start_up"] > 0.05
    lines = "\n".join(_pipeline_lines(result))
    assert f"a folder of {FOLDER_PHOTOS} JPEG photos: ours" in lines and "one photo's stages (s): start_up" in lines
