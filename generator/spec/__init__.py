"""The spec: safe YAML, the contract (pydantic), located validation, migrations, docs."""
