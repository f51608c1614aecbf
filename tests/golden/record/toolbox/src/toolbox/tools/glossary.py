"""Tools of this module, called by the service's ReAct programs.

The signatures come from the spec (the LM sees them); the bodies are yours.
Tools are async so that a slow call never blocks other requests.
"""


async def lookup(
    term: str,
    limit: int,
) -> list[str]:
    """Look up a term in the glossary."""
    raise NotImplementedError("lookup: implement this tool")


async def today() -> str:
    """Today's date, ISO 8601."""
    raise NotImplementedError("today: implement this tool")
