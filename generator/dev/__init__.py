"""For development and tests: the fake LM, the demo, and the dev server for generated services."""
