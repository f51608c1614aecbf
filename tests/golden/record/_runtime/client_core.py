"""The generic half of the service's typed client: connection, headers, calls, client bases.

``client.py`` is generated per service: its request and response models and
one typed attribute per program (``client.agent(question=...)``,
``client.agent.stream(...)``, ``client.agent.batch([...])``) call the
transports here. Everything the client reaches (this module, client_errors,
client_stream, events, logs and wire) imports only httpx, httpx-sse, pydantic
and the standard library, so a caller needs none of the server's dependencies.
"""

import copy
import dataclasses
from collections.abc import Sequence
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict

from .client_errors import ServiceError, error_from_body, error_of
from .client_stream import AsyncStream, Stream
from .logs import REQUEST_ID_HEADER as REQUEST_ID_BYTES
from .logs import valid_request_id
from .wire import Inputs

R = TypeVar("R", bound=BaseModel)
DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=10.0)  # a run's answer may take minutes
API_KEY_HEADER = "x-api-key"
REQUEST_ID_HEADER = REQUEST_ID_BYTES.decode()  # what the service reads and echoes


class Request(Inputs):
    """The base of the client's request models: the server's rules, and its names.

    A field whose public name is a keyword of DSPy's call path (``config``) is
    ``config_`` in the program's Python; the client takes both names, and
    sends the public one.
    """

    model_config = ConfigDict(populate_by_name=True)


class Response(BaseModel):
    """The base of the client's response models; fields a newer service adds are ignored."""


@dataclasses.dataclass(frozen=True)
class Options:
    """What every request of a client shares."""

    base_url: str
    api_key: str | None = None
    request_id: str | None = None
    max_retries: int = 5


class _Transport:
    """URLs and headers; the sync and async transports add the calls."""

    def __init__(self, options: Options) -> None:
        self.options = options

    def url(self, path: str) -> str:
        return f"{self.options.base_url}{path}"

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.options.api_key is not None:
            headers[API_KEY_HEADER] = self.options.api_key
        if self.options.request_id is not None:
            headers[REQUEST_ID_HEADER] = self.options.request_id
        return headers

    def with_options(self, **changes: Any) -> Self:
        clone = copy.copy(self)
        clone.options = dataclasses.replace(self.options, **changes)
        return clone


def body_of(model: BaseModel) -> Any:
    """A request model as JSON, under the public names."""
    return model.model_dump(mode="json", by_alias=True)


def _answer(response: httpx.Response) -> Any:
    if response.status_code != 200:
        raise error_of(response)
    return response.json()


def _run_state(response: httpx.Response) -> dict[str, Any]:
    state: dict[str, Any] = _answer(response)  # GET /v1/runs/{run}'s RunInfo
    return state


def _batch_results(
    answer: Any, response_type: type[R], request_id: str | None
) -> list[R | ServiceError]:
    results: list[R | ServiceError] = []
    for item in answer["results"]:
        error = item.get("error")
        if error is None:
            results.append(response_type.model_validate(item["outputs"]))
        else:
            code, message = str(error.get("code")), str(error.get("message"))
            results.append(error_from_body(error, code, message, request_id=request_id))
    return results


class SyncTransport(_Transport):
    """The calls of :class:`Client`, over one ``httpx.Client`` (its connection pool)."""

    def __init__(self, http: httpx.Client, options: Options) -> None:
        super().__init__(options)
        self.http = http

    def call(self, path: str, body: BaseModel, response_type: type[R]) -> R:
        """``POST path`` with the body's JSON; its outputs, or the error raised."""
        response = self.http.post(self.url(path), json=body_of(body), headers=self.headers())
        return response_type.model_validate(_answer(response))

    def batch(
        self, path: str, bodies: Sequence[BaseModel], response_type: type[R]
    ) -> list[R | ServiceError]:
        """Each input's outputs or its error (not raised), in the inputs' order."""
        inputs = {"inputs": [body_of(body) for body in bodies]}
        response = self.http.post(self.url(path), json=inputs, headers=self.headers())
        answer = _answer(response)
        return _batch_results(answer, response_type, response.headers.get(REQUEST_ID_HEADER))

    def stream(self, path: str, body: BaseModel, response_type: type[R]) -> Stream[R]:
        return Stream(self, path, body_of(body), response_type)

    def read_run(self, run_id: str) -> dict[str, Any]:
        return _run_state(self.http.get(self.url(f"/v1/runs/{run_id}"), headers=self.headers()))

    def cancel_run(self, run_id: str) -> dict[str, Any]:
        url = self.url(f"/v1/runs/{run_id}/cancel")
        return _run_state(self.http.post(url, headers=self.headers()))


class AsyncTransport(_Transport):
    """The calls of :class:`AsyncClient`, over one ``httpx.AsyncClient``."""

    def __init__(self, http: httpx.AsyncClient, options: Options) -> None:
        super().__init__(options)
        self.http = http

    async def call(self, path: str, body: BaseModel, response_type: type[R]) -> R:
        """``POST path`` with the body's JSON; its outputs, or the error raised."""
        response = await self.http.post(self.url(path), json=body_of(body), headers=self.headers())
        return response_type.model_validate(_answer(response))

    async def batch(
        self, path: str, bodies: Sequence[BaseModel], response_type: type[R]
    ) -> list[R | ServiceError]:
        """Each input's outputs or its error (not raised), in the inputs' order."""
        inputs = {"inputs": [body_of(body) for body in bodies]}
        response = await self.http.post(self.url(path), json=inputs, headers=self.headers())
        answer = _answer(response)
        return _batch_results(answer, response_type, response.headers.get(REQUEST_ID_HEADER))

    def stream(self, path: str, body: BaseModel, response_type: type[R]) -> AsyncStream[R]:
        return AsyncStream(self, path, body_of(body), response_type)

    async def read_run(self, run_id: str) -> dict[str, Any]:
        url = self.url(f"/v1/runs/{run_id}")
        return _run_state(await self.http.get(url, headers=self.headers()))

    async def cancel_run(self, run_id: str) -> dict[str, Any]:
        url = self.url(f"/v1/runs/{run_id}/cancel")
        return _run_state(await self.http.post(url, headers=self.headers()))


def _check_request_id(request_id: str | None) -> None:
    """Refuse an id the service would replace with its own (1-128 of ``A-Za-z0-9._:-``)."""
    if request_id is not None and not valid_request_id(request_id):
        raise ValueError(f"a request id is 1-128 characters of A-Za-z0-9._:-, not {request_id!r}")


class ClientBase:
    """A client of the service; the generated ``Client`` adds an attribute per program.

    ``api_key`` is sent as ``X-API-Key`` on every request; ``timeout`` bounds
    each JSON call (a stream's reads are kept alive by the server's pings);
    ``max_retries`` bounds the reconnects in a row of a broken stream.
    ``http_client`` shares a connection pool (and its transport, for tests).
    """

    def __init__(
        self,
        base_url: str = "http://localhost:8000",
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 5,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._owns_http = http_client is None
        http = http_client or httpx.Client(timeout=timeout)
        options = Options(base_url.rstrip("/"), api_key, None, max_retries)
        self._transport = SyncTransport(http, options)
        self._bind()

    def _bind(self) -> None:
        """Make each program's attribute on this client's transport (generated)."""

    def with_options(self, *, request_id: str | None = None) -> Self:
        """This client, sending ``X-Request-ID: request_id`` (the service echoes it)."""
        _check_request_id(request_id)
        clone = copy.copy(self)
        clone._owns_http = False
        clone._transport = self._transport.with_options(request_id=request_id)
        clone._bind()
        return clone

    def read_run(self, run_id: str) -> dict[str, Any]:
        """A streamed run's state: ``status``, ``events``, ``result`` or ``error``."""
        return self._transport.read_run(run_id)

    def cancel_run(self, run_id: str) -> dict[str, Any]:
        """Stop a run now, wherever it runs; answers its state."""
        return self._transport.cancel_run(run_id)

    def close(self) -> None:
        """Close the connection pool (unless it was given)."""
        if self._owns_http:
            self._transport.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncClientBase:
    """:class:`ClientBase` for asyncio; the generated ``AsyncClient`` adds the programs."""

    def __init__(
        self,
        base_url: str = "http://localhost:8000",
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 5,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._owns_http = http_client is None
        http = http_client or httpx.AsyncClient(timeout=timeout)
        options = Options(base_url.rstrip("/"), api_key, None, max_retries)
        self._transport = AsyncTransport(http, options)
        self._bind()

    def _bind(self) -> None:
        """Make each program's attribute on this client's transport (generated)."""

    def with_options(self, *, request_id: str | None = None) -> Self:
        """This client, sending ``X-Request-ID: request_id`` (the service echoes it)."""
        _check_request_id(request_id)
        clone = copy.copy(self)
        clone._owns_http = False
        clone._transport = self._transport.with_options(request_id=request_id)
        clone._bind()
        return clone

    async def read_run(self, run_id: str) -> dict[str, Any]:
        """A streamed run's state: ``status``, ``events``, ``result`` or ``error``."""
        return await self._transport.read_run(run_id)

    async def cancel_run(self, run_id: str) -> dict[str, Any]:
        """Stop a run now, wherever it runs; answers its state."""
        return await self._transport.cancel_run(run_id)

    async def aclose(self) -> None:
        """Close the connection pool (unless it was given)."""
        if self._owns_http:
            await self._transport.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
