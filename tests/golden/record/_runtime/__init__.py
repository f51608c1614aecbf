"""Generic serving code: the same in every dspy-forge service, owned by the template."""
