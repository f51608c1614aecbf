"""Your programs' own DSPy modules (module: Custom in the spec). Their bodies are yours."""
