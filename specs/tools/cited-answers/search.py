"""The knowledge base of the cited-answers example: a few passages, matched by words."""

PASSAGES = [
    "DSPy is a framework for programming language models with modules and signatures.",
    "A DSPy signature declares a task's typed input and output fields.",
    "dspy.streamify turns a DSPy program into an async stream of tokens and status messages.",
    "Server-Sent Events carry a stream of events from a server over one HTTP response.",
]


async def search(query: str) -> list[str]:
    """The passages sharing the most words with ``query``, best first (at most three)."""
    words = set(query.lower().split())
    scored = sorted(PASSAGES, key=lambda p: -len(words & set(p.lower().split())))
    return scored[:3]
