"""The client protocols the service speaks besides its own SSE, one module each.

A protocol is data here: its entry in :data:`PROTOCOLS` (a ``base.Protocol``)
says which setting turns it on, how the app installs it, and where it serves a
program (``GET /v1/programs`` lists that URL). Adding a protocol is adding its
module and its entry; the app and the catalog do not change.
"""

from typing import Any

from .agui import AGUI
from .ai_sdk import AI_SDK
from .base import Protocol
from .mcp import MCP
from .openai import OPENAI

PROTOCOLS: tuple[Protocol, ...] = (OPENAI, AI_SDK, MCP, AGUI)


def enabled_protocols(settings: Any) -> tuple[Protocol, ...]:
    """The protocols whose setting is on (``PROTOCOL_<NAME>``; every one by default)."""
    return tuple(protocol for protocol in PROTOCOLS if getattr(settings, protocol.setting))
