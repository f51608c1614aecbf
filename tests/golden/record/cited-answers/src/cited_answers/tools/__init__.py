"""Tools the agents call. Their bodies are yours: fill in each stub."""
