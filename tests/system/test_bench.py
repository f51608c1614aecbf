"""The benchmark suite's smallest setting runs end to end and reports every figure.

Only the shape of the output is checked: benchmarks are never timed assertions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_bench_reports_every_section(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--no-plot", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())

    assert {"machine", "cpu", "inprocess", "ttft", "capacity", "generation", "targets"} <= set(
        results
    )
    assert results["machine"]["nproc"] >= 1
    cpu = results["cpu"]["median"]
    for server in ("service", "baseline", "floor"):
        for figures in cpu[server]["qa"].values():
            assert figures["completed"] > 0
            assert figures["cpu_ms_per_stream"] is not None
            assert figures["ttft_p50_s"] is not None
    assert cpu["service"]["qa"]["1"]["errors"] == 0
    assert results["cpu"]["first_request"]["service"]["qa"]["tokens"] > 0
    assert results["inprocess"]["qa"]["1"]["cpu_ms_per_stream"] is not None
    assert set(results["ttft"]["median"]) == {"service", "baseline", "floor", "inprocess", "lm"}
    assert results["startup"]["median_s"] > 0
    level = next(iter(results["capacity"]["levels"]["service"].values()))
    assert level["completed"] + level["errors"] == level["streams"]
    assert level["rss_kib_per_idle_stream"] is not None
    generation = results["generation"]
    assert generation["cold_start"]["median"] > 0
    assert all(size["median"] > 0 for size in generation["generate"].values())
    assert {"cpu_half_of_baseline_qa", "service_layer_overhead_qa", "generation"} <= set(
        results["targets"]
    )
    report = (out / "report.md").read_text()
    assert "Server CPU per completed stream" in report
    assert "Time to first token" in report
    assert "Start-up to" in report


def test_pool_bench_sees_the_pool_size_at_the_fake_lm(tmp_path: Path) -> None:
    out = tmp_path / "pool"
    command = [
        sys.executable,
        "-m",
        "bench.pool",
        "--streams",
        "12",
        "--pools",
        "4,12",
        "--inprocess",
    ]
    result = subprocess.run(
        [*command, "--pace-ms", "20", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    small, large, alone = json.loads((out / "pool.json").read_text())["rows"]
    assert alone["server"] == "inprocess"  # the same streams with streamify alone
    for row in (small, large, alone):
        assert row["whole"] == row["streams"] == 12 and not row["errors"]
        assert row["tokens"] == row["tokens_expected"]
        assert row["gap_p99_ms"] is not None
    assert small["upstream_peak"] <= 4  # DSPy's engine held to the pool the setting gave it
    assert large["upstream_peak"] > 4
    assert alone["upstream_peak"] > 4  # the in-process program has the same pool setting
