"""The benchmark suite's smallest setting runs end to end and reports every figure.

Only the shape of the output is checked: benchmarks are never timed assertions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
        "--flush",
        "0,0.05",
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
    rows = json.loads((out / "pool.json").read_text())["rows"]
    small, small_flushed, large, large_flushed, alone = rows
    assert alone["server"] == "inprocess"  # the same streams with streamify alone
    for row in (small, small_flushed, large, large_flushed, alone):
        assert row["whole"] == row["streams"] == 12 and not row["errors"]
        assert row["tokens"] == row["tokens_expected"]
        assert row["gap_p99_ms"] is not None
        assert row["cpu_ms_per_stream"] > 0
    # The service's writes are counted (uvloop writes with write(2); asyncio's send(2), as the
    # in-process streams use, is not: bench.proc.write_calls).
    assert all(r["writes_per_stream"] > 0 for r in (small, small_flushed, large, large_flushed))
    # STREAM_FLUSH_INTERVAL reaches the service: tokens 20 ms apart go out several to a write.
    assert (small_flushed["flush_s"], large_flushed["flush_s"]) == (0.05, 0.05)
    assert small_flushed["writes_per_stream"] < small["writes_per_stream"]
    assert large_flushed["writes_per_stream"] < large["writes_per_stream"]
    assert small["upstream_peak"] <= 4  # DSPy's engine held to the pool the setting gave it
    assert large["upstream_peak"] > 4
    assert alone["upstream_peak"] > 4  # the in-process program has the same pool setting


def test_ab_variants_take_the_inline_threads_experiment() -> None:
    from bench.ab import INLINE_THREADS_PATH, Variant

    served = Variant.parse("fast=head,--loop,uvloop,inline-threads,env:A=1")
    assert served.uvicorn_args == ("--loop", "uvloop") and served.env == (("A", "1"),)
    assert served.inline_threads and served.python_path("src") == f"src:{INLINE_THREADS_PATH}"
    assert served.describe() == "head --loop uvloop A=1 inline-threads"
    alone = Variant.parse("alone=inprocess")
    assert alone.inprocess_env() is None and alone.python_path("src") == "src"
    # The experiment's folder really replaces asyncio.to_thread in a process that has it.
    probe = "import asyncio; print(asyncio.to_thread.__module__)"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(INLINE_THREADS_PATH), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "sitecustomize"


def test_ab_variants_take_an_interpreter() -> None:
    from bench.ab import Variant

    other = Variant.parse("py312=head,--loop,uvloop,python:/opt/py312/bin/python")
    assert other.python == "/opt/py312/bin/python" and other.uvicorn_args == ("--loop", "uvloop")
    assert other.describe() == "head --loop uvloop python:/opt/py312/bin/python"
    alone = Variant.parse("alone=inprocess,python:/opt/py312/bin/python")
    assert alone.inprocess and alone.python == "/opt/py312/bin/python"
    assert Variant.parse("same=head").python is None
    with pytest.raises(ValueError, match="one interpreter"):
        Variant.parse("two=head,python:/a,python:/b")


def test_another_interpreters_environment_gets_this_ones_versions(tmp_path: Path) -> None:
    from importlib import metadata

    from bench.venv import pinned, requirements

    assert pinned("httpx>=0.28") == f"httpx=={metadata.version('httpx')}"
    marker = "sys_platform != 'win32'"
    assert pinned(f"uvloop>=0.21; {marker}") == f"uvloop=={metadata.version('uvloop')}; {marker}"
    assert pinned("no-such-package-here>=1") == "no-such-package-here>=1"
    (tmp_path / "pyproject.toml").write_text(
        '[project]\ndependencies = ["fastapi>=0.135"]\n'
        '[project.optional-dependencies]\nclient = ["httpx-sse>=0.4"]\n'
    )
    assert requirements(tmp_path) == [
        f"fastapi=={metadata.version('fastapi')}",
        f"httpx-sse=={metadata.version('httpx-sse')}",
    ]


def test_instructions_read_simulated_cache_misses(tmp_path: Path) -> None:
    from bench.instructions import _figures, counts_in

    dump = tmp_path / "callgrind.out.1"
    dump.write_text(
        "version: 1\nevents: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw\n"
        "fl=x\n1 5 0 0 0 0 0 0 0 0\n"
        "totals: 2000000 10 10 1000 500 500 10 5 5\n"
    )
    counts = counts_in(dump)
    assert counts["Ir"] == 2_000_000 and counts["DLmw"] == 5
    figures = _figures(counts, 2, {"tokens_per_stream": 20.0, "errors": 0})
    assert figures["minstr_per_stream"] == 1.0
    assert figures["k_l1_misses_per_stream"] == 1.0
    assert figures["k_ll_misses_per_stream"] == 0.01
    # cycles = Ir + 10 x 2,000 L1 misses + 100 x 20 last-level misses, per stream
    assert figures["mcycles_per_stream"] == (2_000_000 + 20_000 + 2_000) / 2 / 1e6
