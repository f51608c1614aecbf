"""What ``GET /v1/programs`` says of each program: schemas, streams, endpoints, protocols."""

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from .program import ServedProgram
from .protocols.base import Protocol


class ProgramInfo(BaseModel):
    """A program as a client discovers it."""

    name: str
    module: str = Field(description="The DSPy module, e.g. ChainOfThought.")
    streams: list[str] = Field(description="Fields streamed token by token, as predictor.field.")
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    endpoints: dict[str, str]
    protocols: dict[str, str] = Field(
        description="Its URL in every client protocol the service speaks, by protocol "
        "(openai: the chat completions URL, with the program's name as the model)."
    )


def program_info(
    program: ServedProgram,
    request: type[BaseModel],
    response: type[BaseModel],
    protocols: Sequence[Protocol] = (),
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
        protocols={protocol.name: protocol.url(program.name) for protocol in protocols},
    )
