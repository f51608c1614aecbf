async def search(query: str) -> str:
    """Search for information."""
    return f"Results for: {query}"
