"""The spec's ``server.protocols`` turns MCP and AG-UI off: no routes, URLs or README snippets."""

from __future__ import annotations

from pathlib import Path

import httpx

from dspy_forge.dev.fakelm.testing import FakeLM
from dspy_forge.render.generate import generate
from dspy_forge.spec.loader import load_spec_text

from .serving import served

SPEC = """
version: 1
service: {name: quiet-agents}
lm: {model: openai/gpt-4o-mini, api_key_env: OPENAI_API_KEY}
server: {protocols: {mcp: false, agui: false}}
programs:
  qa: {module: Predict, signature: "question -> answer", stream: [{field: answer}]}
"""


def test_the_spec_turns_mcp_and_agui_off(tmp_path: Path, fake_lm: FakeLM) -> None:
    project = generate(load_spec_text(SPEC), tmp_path / "project")
    readme = (project / "README.md").read_text("utf-8")
    assert "## Agent protocols" not in readme and "mcpServers" not in readme
    body = {
        "threadId": "t",
        "runId": "r",
        "messages": [{"id": "1", "role": "user", "content": "Hi"}],
    }
    with served(project, "quiet_agents", fake_lm, tmp_path / "service.log") as service:
        assert httpx.post(f"{service.url}/mcp", json={"jsonrpc": "2.0", "id": 1}).status_code == 404
        assert httpx.post(f"{service.url}/agui/qa", json=body).status_code == 404
        (program,) = httpx.get(f"{service.url}/v1/programs").json()
        assert {"mcp", "agui"}.isdisjoint(program["protocols"])
        assert "openai" in program["protocols"]
