"""The MCP server of the programs (streamable HTTP): every program is a tool.

Built on the official ``mcp`` SDK's low-level ``Server`` and its streamable-HTTP
session manager, served at ``/mcp`` inside the app (``mcp.py`` mounts it), so the API key, the body
size cap, request ids and metrics apply as to every other route. A tool is
named by its program; its ``inputSchema`` is the program's request body's JSON
Schema, its ``outputSchema`` the response body's, and a call answers with
``structuredContent``: every output, as ``POST /v1/<program>`` returns them
(and the same as JSON text, for clients that read only ``content``).

Mapping of the run's events (docs/protocol.md has the table):

- each status event is a progress notification (``notifications/progress``)
  on the call's stream, when the client asked for progress (a
  ``progressToken``): ``progress`` counts the status events so far,
  ``message`` is the status's message; the SDK's client hands them to
  ``call_tool``'s ``progress_callback``;
- tokens have no slot in MCP (a tool result is not streamed): the result
  carries the final fields;
- a run that fails (an LM error, the deadline, the service full) is a tool
  result with ``isError: true``: ``content`` says our message,
  ``structuredContent`` is ``{"error": {"code", "message", "run_id"}}``;
  arguments that do not validate are one too, so a model can correct them
  (note 2); an unknown tool is a JSON-RPC error (``-32602``);
- cancellation: closing the call's response stream (the 2026-07-28 revision's
  cancellation; the SDK's client does it when ``call_tool`` is cancelled) or
  a ``notifications/cancelled`` (earlier revisions) cancels the handler, and
  closing its reader stops the run and the LM's stream at once.

Notes:
1. Stateless: every POST is served on its own, as the 2026-07-28 revision
   wants (no sessions, no resumption), so any replica serves any call and the
   request's context (its caller, its request id) is the handler's.
2. The spec asks servers to report input validation errors as tool execution
   errors, not protocol errors, so that the calling model sees and fixes them.
3. Log messages (``notifications/message``) are not sent: the SDK deprecates
   the logging capability in the revision it speaks (SEP-2577) and delivers
   them only on a per-request opt-in; progress carries every status instead.
"""

import json
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import mcp_types as types
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from ..errors import RunFailed
from ..events import DoneEvent, ErrorEvent, PredictionEvent, StatusEvent
from ..runs import Runs
from .base import ChatProgram

INVALID_PARAMS = -32602


class ProgramTools:
    """The programs as MCP tools: listed with their schemas, called through ``Runs.open``."""

    def __init__(
        self, chat: Mapping[str, ChatProgram], runs: Runs, title: str, version: str
    ) -> None:
        self.chat = chat
        self.runs = runs
        self.tools = [_tool(name, program) for name, program in chat.items()]
        self.schemas = {tool.name: tool.input_schema for tool in self.tools}
        self.server: Server[Any] = Server(
            title,
            version=version,
            get_tool_input_schema=self.schemas.get,
            on_list_tools=self.list_tools,
            on_call_tool=self.call_tool,
        )

    async def list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self.tools)

    async def call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        """Run the program named by the tool; its status as progress, its outputs as the result."""
        chat = self.chat.get(params.name)
        if chat is None:
            raise MCPError(INVALID_PARAMS, f"No tool named {params.name!r}; tools/list lists them.")
        try:
            body = chat.request.model_validate(params.arguments or {})
            reader = await self.runs.open(
                chat.program, body, chat.to_response, cancel_on_close=True
            )
        except (ValidationError, RequestValidationError) as exc:  # note 2
            return failed("invalid_arguments", _first_error(chat.name, exc.errors()))
        except RunFailed as exc:
            return failed(exc.failure.code, exc.failure.message, exc.run_id)
        outputs: dict[str, Any] = {}
        statuses = 0
        try:
            async for event in reader.events():
                if isinstance(event, StatusEvent):
                    statuses += 1
                    await ctx.session.report_progress(statuses, None, event.message)
                elif isinstance(event, PredictionEvent):
                    outputs = event.outputs
                elif isinstance(event, DoneEvent):
                    text = json.dumps(outputs, ensure_ascii=False)
                    content: list[types.ContentBlock] = [types.TextContent(text=text)]
                    return types.CallToolResult(content=content, structured_content=outputs)
                elif isinstance(event, ErrorEvent):
                    return failed(event.code, event.message, reader.run_id)
            return failed("incomplete", "The run ended without its outputs.", reader.run_id)
        finally:
            # A cancelled call (the client closed its stream) stops the run; shielded,
            # so that the cancellation that got us here does not cut the stop short.
            with anyio.CancelScope(shield=True):
                await reader.aclose()


def _tool(name: str, program: ChatProgram) -> types.Tool:
    """A program as a tool: its request body's schema in, its response body's out."""
    schema = program.request.model_json_schema()
    return types.Tool(
        name=name,
        description=schema.get("description"),
        input_schema=schema,
        output_schema=program.response.model_json_schema(),
    )


def failed(code: str, message: str, run_id: str | None = None) -> types.CallToolResult:
    """A tool result that reports a failed run, typed by our error code."""
    error = {"code": code, "message": message, "run_id": run_id}
    return types.CallToolResult(
        content=[types.TextContent(text=message)],
        structured_content={"error": error},
        is_error=True,
    )


def _first_error(program: str, errors: Sequence[Any]) -> str:
    """The first error, located in the arguments (an input checked by the runs says ``body``)."""
    error = errors[0]
    where = ".".join(str(part) for part in error["loc"] if part != "body") or "arguments"
    return f"The {program} tool's arguments do not validate: {where}: {error['msg']}"


def session_manager(app: FastAPI) -> StreamableHTTPSessionManager:
    """The session manager that serves the app's programs as tools, stateless (note 1)."""
    tools = ProgramTools(app.state.chat, app.state.runs, app.title, app.version)
    return StreamableHTTPSessionManager(tools.server, stateless=True)


def asgi_app(manager: StreamableHTTPSessionManager) -> StreamableHTTPASGIApp:
    """The ASGI app of ``manager``'s endpoint."""
    return StreamableHTTPASGIApp(manager)
