"""Start-up: from process start to the first ``/readyz`` 200, for a generated service.

    .venv/bin/python -m bench.startup --spec toolbox --starts 3

The spec is generated with its tools filled in; each start runs the service's uvicorn command
line (``service_command``, one worker) on the fake LM and polls ``/readyz`` every 100 ms
from the moment ``Popen`` returns; the figure is the time to the first 200. A section of
``python -m bench`` (``startup``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "true")

from bench.servers import BASE_ENV, SERVICE_ENV, SPECS, generate_project, lm_env
from dspy_forge.dev.devserver import fake_lm_env, free_port, service_command
from dspy_forge.dev.fakelm.testing import running_fake_lm
from dspy_forge.spec.loader import load_spec

POLL_S = 0.1


def time_to_ready(project: Any, env: dict[str, str], timeout: float = 60.0) -> float:
    """Seconds from starting the service to its first ``/readyz`` 200."""
    host, port = "127.0.0.1", free_port()
    url = f"http://{host}:{port}/readyz"
    started = time.perf_counter()
    process = subprocess.Popen(
        service_command(project.package, host, port),
        cwd=project.path,
        env={**os.environ, "PYTHONPATH": str(project.path / "src"), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.perf_counter() - started < timeout:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited with {process.returncode}")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(POLL_S)
        raise TimeoutError(f"no /readyz 200 within {timeout} s")
    finally:
        process.terminate()
        process.wait(timeout=30)


def measure(spec: str, starts: int, out: Path) -> dict[str, Any]:
    """``starts`` start-ups of ``specs/<spec>.yaml``'s service, and their median."""
    project = generate_project(spec, out / "startup" / spec)
    model = load_spec(SPECS / f"{spec}.yaml").model
    own_lm = [program.name for program in model.programs if program.lm is not None]
    with running_fake_lm() as fake:
        api_base = fake.scenario_base("delay-2ms")
        # Every program's LM on the fake one, those with an LM of their own too: /readyz
        # is 200 only when every program has an LM it can call.
        env = {**BASE_ENV, **fake_lm_env(api_base, own_lm), **lm_env(api_base), **SERVICE_ENV}
        times = [time_to_ready(project, env) for _ in range(starts)]
    return {"spec": spec, "starts_s": times, "median_s": statistics.median(times)}


def table(result: dict[str, Any]) -> str:
    starts = ", ".join(f"{t:.2f}" for t in result["starts_s"])
    return "\n".join(
        [
            f"**Start-up to `/readyz`** (`specs/{result['spec']}.yaml`, one uvicorn worker, "
            "from `Popen` to the first 200, polled every 100 ms)",
            "",
            "| spec | starts (s) | median |",
            "|---|---|---|",
            f"| {result['spec']} | {starts} | **{result['median_s']:.2f} s** |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.startup", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--spec", default="toolbox")
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("out/bench"))
    args = parser.parse_args(argv)
    result = measure(args.spec, args.starts, args.out.resolve())
    (args.out / "startup.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
