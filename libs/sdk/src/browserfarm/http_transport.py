"""The HTTP/JSON transport: the RPCs as Envoy transcodes them, for where gRPC does not pass.

Each RPC's path, verb and body come from its `google.api.http` annotation in the
service's descriptor, so the stubs here follow the protos as the generated gRPC
ones do. Requests and replies are the RPCs' messages in their proto3 JSON form;
a streamed reply (WatchTask) is read as one JSON object a line. HTTP/1.1 is
enough: a proxy that passes only plain HTTP passes these calls.
"""

import contextlib
import json
import math
import re
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any

import grpc
import httpx
from google.api import annotations_pb2, http_pb2, httpbody_pb2  # type: ignore[import-untyped]
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from browserfarm.config import ClientOptions
from browserfarm.errors import CLIENT_DEADLINE, FarmError, Timeout, Unavailable, from_status
from farm.sessions.v1 import sessions_pb2
from farm.storage.v1 import artifacts_pb2
from farm.tasks.v1 import tasks_pb2

_PATH_FIELD = re.compile(r"\{([a-z_.]+)\}")
_HTTP_BODY = "google.api.HttpBody"
# What a status means when the body names no gRPC code (a proxy's own answer).
_CODE_OF_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ABORTED,
    412: grpc.StatusCode.FAILED_PRECONDITION,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    499: grpc.StatusCode.CANCELLED,
    501: grpc.StatusCode.UNIMPLEMENTED,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
_CODE_OF_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def http_error(status: int, body: bytes, headers: Iterable[tuple[str, str]]) -> FarmError:
    """The exception for an HTTP answer that is not 2xx: its gRPC code, else its status's."""
    try:
        written = json.loads(body)
    except ValueError:
        written = None
    number = written.get("code") if isinstance(written, dict) else None
    code = _CODE_OF_NUMBER.get(number) if isinstance(number, int) else None
    if code is None or code == grpc.StatusCode.OK:
        fallback = grpc.StatusCode.INTERNAL if status >= 500 else grpc.StatusCode.UNKNOWN
        code = _CODE_OF_STATUS.get(status, fallback)
    message = written.get("message", "") if isinstance(written, dict) else ""
    return from_status(code, message or f"HTTP {status}: {body[:200]!r}", list(headers))


def grpc_timeout(seconds: float) -> str:
    """`seconds` as a grpc-timeout header: at most 8 digits, in milliseconds or seconds."""
    milliseconds = max(1, math.ceil(seconds * 1000))
    if milliseconds < 10**8:
        return f"{milliseconds}m"
    return f"{min(math.ceil(seconds), 10**8 - 1)}S"


def _rule(method: MethodDescriptor) -> tuple[str, str, str]:
    """(verb, path template, body field) of the method's `google.api.http` annotation."""
    rule: http_pb2.HttpRule = method.GetOptions().Extensions[annotations_pb2.http]
    pattern = rule.WhichOneof("pattern")
    if pattern is None or pattern == "custom":
        raise FarmError(f"{method.full_name} has no HTTP mapping")
    return pattern.upper(), getattr(rule, pattern), rule.body


def _query(fields: Mapping[str, Any]) -> list[tuple[str, str | int | float | bool | None]]:
    """The URL query of a GET's fields (scalars and lists of them)."""
    query: list[tuple[str, str | int | float | bool | None]] = []
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            query.append((name, json.dumps(item) if isinstance(item, bool) else str(item)))
    return query


class HttpMethod:
    """One RPC over HTTP/JSON, called as a grpc.aio stub's method is."""

    def __init__(self, client: httpx.AsyncClient, method: MethodDescriptor) -> None:
        self._client = client
        self._method = method
        self._verb, self._template, self._body = _rule(method)
        self._reply: Callable[[], Message] = message_factory.GetMessageClass(method.output_type)

    def _request(self, request: Message, metadata: Iterable[tuple[str, str]]) -> httpx.Request:
        fields = json_format.MessageToDict(request)
        in_path = set()

        def filled(match: re.Match[str]) -> str:
            name = match.group(1)
            in_path.add(name)
            return str(getattr(request, name))

        path = _PATH_FIELD.sub(filled, self._template)
        rest = {
            name: value
            for name, value in fields.items()
            if request.DESCRIPTOR.fields_by_camelcase_name[name].name not in in_path
        }
        content: bytes | None = None
        query: list[tuple[str, str | int | float | bool | None]] = []
        if self._body == "*":
            content = json.dumps(rest).encode()
        elif self._body:
            content = json_format.MessageToJson(getattr(request, self._body), indent=None).encode()
        else:
            query = _query(rest)
        headers = dict(metadata)
        if content is not None:
            headers["content-type"] = "application/json"
        return self._client.build_request(
            self._verb, path, params=query, content=content, headers=headers
        )

    def _parsed(self, response: httpx.Response) -> Any:
        if self._method.output_type.full_name == _HTTP_BODY:
            return httpbody_pb2.HttpBody(
                content_type=response.headers.get("content-type", ""), data=response.content
            )
        return json_format.Parse(
            response.content or b"{}", self._reply(), ignore_unknown_fields=True
        )

    def __call__(
        self,
        request: Message,
        *,
        metadata: Iterable[tuple[str, str]] = (),
        timeout: float | None = None,
    ) -> Any:
        """The reply to `request`, to await (for a streaming RPC, an async iterator of replies)."""
        if self._method.server_streaming:
            return self._stream(request, metadata)
        return self._unary(request, metadata, timeout)

    async def _unary(
        self, request: Message, metadata: Iterable[tuple[str, str]], timeout: float | None
    ) -> Any:
        sent = self._request(request, metadata)
        sent.extensions["timeout"] = httpx.Timeout(timeout).as_dict()
        if timeout is not None:
            # Envoy passes it on as the RPC's deadline, as a gRPC client's: RunTask then
            # answers the task as it stands before the caller gives up, not after.
            sent.headers["grpc-timeout"] = grpc_timeout(timeout)
        with _reaching_the_farm():
            response = await self._client.send(sent)
        if not response.is_success:
            raise http_error(response.status_code, response.content, response.headers.items())
        return self._parsed(response)

    async def _stream(
        self, request: Message, metadata: Iterable[tuple[str, str]]
    ) -> AsyncIterator[Any]:
        sent = self._request(request, metadata)
        sent.extensions["timeout"] = httpx.Timeout(None).as_dict()
        with _reaching_the_farm():
            response = await self._client.send(sent, stream=True)
            try:
                if not response.is_success:
                    body = await response.aread()
                    raise http_error(response.status_code, body, response.headers.items())
                async for line in response.aiter_lines():
                    if line.strip():
                        yield json_format.Parse(line, self._reply(), ignore_unknown_fields=True)
            finally:
                await response.aclose()


@contextlib.contextmanager
def _reaching_the_farm() -> Iterator[None]:
    """Turns httpx's failures to reach the farm into the SDK's exceptions."""
    try:
        yield
    except httpx.TimeoutException as error:
        raise Timeout(CLIENT_DEADLINE) from error
    except httpx.TransportError as error:
        raise Unavailable(f"{type(error).__name__}: {error}") from error


class HttpStub:
    """A service's RPCs over HTTP/JSON: `stub.GetTask(request, metadata=..., timeout=...)`."""

    def __init__(self, client: httpx.AsyncClient, service: ServiceDescriptor) -> None:
        for method in service.methods:
            if method.GetOptions().HasExtension(annotations_pb2.http):
                setattr(self, method.name, HttpMethod(client, method))


def _verify(options: ClientOptions) -> ssl.SSLContext | bool:
    """The `verify` of httpx: the farm's CA (else the system's) for https, none for http.

    Loading a CA bundle takes a fifth of a second, and the transport is opened on the
    caller's event loop: a plain http farm needs none (False builds a bare context).
    """
    if not options.secure:
        return False
    if options.ca_file:
        return ssl.create_default_context(cafile=options.ca_file)
    return True


class HttpTransport:
    """The farm's public services over HTTP/JSON (Envoy's transcoding), on one httpx pool."""

    def __init__(self, options: ClientOptions) -> None:
        scheme = "https" if options.secure else "http"
        self._client = httpx.AsyncClient(
            base_url=f"{scheme}://{options.target}", verify=_verify(options)
        )
        self.tasks = HttpStub(self._client, tasks_pb2.DESCRIPTOR.services_by_name["TaskService"])
        self.sessions = HttpStub(
            self._client, sessions_pb2.DESCRIPTOR.services_by_name["SessionService"]
        )
        self.artifacts = HttpStub(
            self._client, artifacts_pb2.DESCRIPTOR.services_by_name["ArtifactService"]
        )

    async def close(self) -> None:
        """Closes the connection pool."""
        await self._client.aclose()
