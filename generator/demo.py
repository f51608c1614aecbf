"""``dspy-forge demo``: a generated service on the built-in fake LM, in the foreground."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path

from rich.console import Console

from dspy_forge.devserver import fake_lm_env, service_command
from dspy_forge.fakelm.testing import running_fake_lm
from dspy_forge.model import ServiceModel


def run_demo(
    model: ServiceModel, project: Path, *, port: int, scenario: str, console: Console
) -> None:
    """Serve ``project`` on ``port`` until interrupted, with a fake LM beside it."""
    with running_fake_lm(scenario=scenario) as fake:
        own_lm = [p.name for p in model.programs if p.lm is not None]
        env = {
            **os.environ,
            "PYTHONPATH": str(project.resolve() / "src"),
            **fake_lm_env(fake.api_base, own_lm),
        }
        program = model.programs[0]
        inputs = {f.name: f.type.sample for f in program.signature.inputs}
        if inputs and program.signature.inputs[0].type.annotation == "str":
            inputs[program.signature.inputs[0].name] = "What is DSPy?"
        console.print(f"fake LM at {fake.api_base}; service at http://127.0.0.1:{port}/docs")
        console.print("try, in another terminal:")
        console.print(
            f"  curl -N -X POST http://127.0.0.1:{port}/v1/{program.name}/stream "
            f"-H 'content-type: application/json' -d '{json.dumps(inputs)}'",
            highlight=False,
            soft_wrap=True,
        )
        command = service_command(model.package, "127.0.0.1", port)
        with contextlib.suppress(KeyboardInterrupt):
            subprocess.run(command, cwd=project, env=env, check=False)
