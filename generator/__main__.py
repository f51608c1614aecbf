"""``python -m dspy_forge``: the command line."""

from dspy_forge.cli import app

app()
