"""What ``GET /v1/programs`` says of each program: schemas, streams and endpoints."""

from typing import Any

from pydantic import BaseModel, Field

from .program import ServedProgram


class ProgramInfo(BaseModel):
    """A program as a client discovers it."""

    name: str
    module: str = Field(description="The DSPy module, e.g. ChainOfThought.")
    streams: list[str] = Field(description="Fields streamed token by token, as predictor.field.")
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    endpoints: dict[str, str]


def program_info(
    program: ServedProgram, request: type[BaseModel], response: type[BaseModel]
) -> ProgramInfo:
    """Describe ``program`` with the JSON Schemas of its request and response bodies."""
    path = f"/v1/{program.name}"
    return ProgramInfo(
        name=program.name,
        module=type(program.module).__name__,
        streams=[f"{item.predictor}.{item.field}" for item in program.listen],
        input_schema=request.model_json_schema(),
        output_schema=response.model_json_schema(),
        endpoints={"run": path, "stream": f"{path}/stream", "batch": f"{path}/batch"},
    )
