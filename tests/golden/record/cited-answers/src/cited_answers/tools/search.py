"""Tools of this module, called by the service's ReAct programs.

The signatures come from the spec (the LM sees them); the bodies are yours.
Tools are async so that a slow call never blocks other requests.
"""


async def search(
    query: str,
) -> list[str]:
    """Search the knowledge base; returns the best passages, most relevant first."""
    raise NotImplementedError("search: implement this tool")
