async def lookup(term: str, limit: int) -> list[str]:
    """Look up a term in the glossary."""
    return [f"{term}: entry {number}" for number in range(1, limit + 1)]


async def today() -> str:
    """Today's date."""
    return "2026-11-25"
