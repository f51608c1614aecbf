"""dspy-forge: generate streaming FastAPI services from a YAML spec of DSPy programs."""

__version__ = "0.1.0"
