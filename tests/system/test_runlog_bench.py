"""The event-log benchmark (``python -m bench.runlog``) runs end to end at its tiny sizes.

Only the shape of its output is checked: benchmarks are never timed assertions. It
starts a redis-server of its own and serves a generated project, like the suite.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    shutil.which("redis-server") is None and not Path("/usr/bin/redis-server").exists(),
    reason="redis-server is not installed (.ci/run installs it)",
)
def test_quick_runlog_bench_reports_every_section(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.runlog", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((tmp_path / "runlog.json").read_text())

    assert {"machine", "memory", "cpu", "http", "token_event"} <= set(results)
    assert results["token_event"]["bytes"] > 100  # real ids, not placeholders
    for size in results["memory"]["sizes"].values():
        assert size["memory_log"]["kept_bytes_per_run"] > size["memory_log"]["data_bytes_per_run"]
        assert size["redis"]["stream_bytes"] > 0
    cpu = results["cpu"]["median"]
    assert set(cpu) == {"queue", "memory", "redis", "redis-remote"}
    for by_level in cpu.values():
        for figures in by_level.values():
            assert figures["delay_p50_us"] is not None  # every follower read its run
    http = results["http"]["median"]
    for name in ("before", "memory", "redis"):
        for figures in http[name].values():
            assert figures["errors"] == 0
            assert figures["tokens_per_stream"] > 0
    report = (tmp_path / "runlog.md").read_text()
    assert "CPU per event" in report
    assert "Memory per ended run" in report
