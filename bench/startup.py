"""Start-up: from process start to the first ``/readyz`` 200, for a generated service.

    .venv/bin/python -m bench.startup --spec toolbox --starts 3

The spec is generated with its tools filled in; each start runs the service's uvicorn command
line (``service_command``, one worker) on the fake LM through ``devserver.serving``, which
polls ``/readyz`` every 100 ms; the figure is the time from just before its ``Popen`` to the
first 200. A section of ``python -m bench`` (``startup``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "true")

from bench.servers import BASE_ENV, SERVICE_ENV, SPECS, generate_project, lm_env
from dspy_forge.dev.devserver import fake_lm_env, free_port, service_command, serving
from dspy_forge.dev.fakelm.testing import running_fake_lm
from dspy_forge.spec.loader import load_spec


def time_to_ready(project: Any, env: dict[str, str], timeout: float = 60.0) -> float:
    """Seconds from starting the service to its first ``/readyz`` 200.

    ``serving`` starts the process and polls the path every 100 ms; its stop is not timed.
    """
    host, port = "127.0.0.1", free_port()
    started = time.perf_counter()
    with (
        open(os.devnull, "wb") as quiet,
        serving(
            service_command(project.package, host, port),
            f"http://{host}:{port}",
            cwd=project.path,
            env={"PYTHONPATH": str(project.path / "src"), **env},
            log=quiet,
            startup_timeout=timeout,
            health_path="/readyz",
        ),
    ):
        return time.perf_counter() - started


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
