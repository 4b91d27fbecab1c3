"""The audit interceptor: every mutating call and every refused call becomes an AuditRecord."""

import contextlib
import inspect
import re
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

import grpc
from google.protobuf import timestamp_pb2

from farm.audit.v1 import audit_pb2
from farm_core.errors import FarmError
from farm_core.identity import IDENTITY_HEADER, Identity, IdentityCodec
from farm_core.scopes import NO_IDENTITY, OPEN_METHOD_PREFIXES, RPC_RULES, RpcRule

Continuation = Callable[[grpc.HandlerCallDetails], Any]

DENIALS: frozenset[grpc.StatusCode] = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
"""Outcomes recorded for every RPC, mutating or not."""

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_MAX_TEXT = 1000


class AuditSink(Protocol):
    """Where records go; AuditPublisher in a service, a list in a unit test."""

    def submit(self, record: audit_pb2.AuditRecord) -> None:
        """Takes `record` without waiting."""


def trace_id(headers: Mapping[str, str]) -> str:
    """The call's trace id: from `traceparent`, else `x-request-id`, else a new one."""
    match = _TRACEPARENT.match(headers.get("traceparent", "").strip().lower())
    if match:
        return match.group(1)
    request_id = headers.get("x-request-id", "").strip()
    return request_id[:_MAX_TEXT] if request_id else uuid.uuid4().hex


def field_text(message: Any, path: str) -> str:
    """The value at dotted `path` of `message` as text; "" when absent."""
    value: Any = message
    for name in path.split("."):
        value = getattr(value, name, None)
        if value is None:
            return ""
    return str(value)[:_MAX_TEXT]


def audit_record(
    *,
    source: str,
    rpc: str,
    outcome: str,
    headers: Mapping[str, str],
    identity: Identity | None = None,
    target: str = "",
    message: str = "",
) -> audit_pb2.AuditRecord:
    """An AuditRecord of a call that ended just now."""
    now = timestamp_pb2.Timestamp()
    now.GetCurrentTime()
    return audit_pb2.AuditRecord(
        id=f"aud_{uuid.uuid4().hex}",
        time=now,
        tenant=identity.tenant if identity else "",
        key_id=identity.key_id if identity else "",
        rpc=rpc[:_MAX_TEXT],
        target=target,
        outcome=outcome,
        trace_id=trace_id(headers),
        source=source,
        message=message[:_MAX_TEXT],
    )


class AuditInterceptor(grpc.aio.ServerInterceptor):
    """Records each call to a mutating RPC, and each refused call to any RPC.

    Sits outside the error-mapping and identity interceptors, so it sees the final
    status and the refusals the identity check makes. It reads the identity token
    itself: the identity interceptor's binding ends before the status is known.
    """

    def __init__(
        self,
        source: str,
        codec: IdentityCodec,
        sink: AuditSink,
        rules: Mapping[str, RpcRule] = RPC_RULES,
    ) -> None:
        self._source = source
        self._codec = codec
        self._sink = sink
        self._rules = rules

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        handler: grpc.RpcMethodHandler | None = await continuation(handler_call_details)
        method = handler_call_details.method
        rule = self._rules.get(method, RpcRule(scope=""))
        if handler is None or method.startswith(OPEN_METHOD_PREFIXES) or rule.scope == NO_IDENTITY:
            return handler
        headers = {
            key: value
            for key, value in (handler_call_details.invocation_metadata or ())
            if isinstance(value, str)
        }

        @contextlib.asynccontextmanager
        async def audited(context: Any, request: Any) -> AsyncIterator[list[Any]]:
            # The handler's response goes here, for the id of what a create made.
            responses: list[Any] = []
            try:
                yield responses
            except BaseException as error:
                code = context.code()
                if not isinstance(code, grpc.StatusCode):
                    code = error.code if isinstance(error, FarmError) else grpc.StatusCode.UNKNOWN
                if rule.mutating or code in DENIALS:
                    details = context.details()
                    self._record(method, rule, headers, request, None, code, str(details or ""))
                raise
            if rule.mutating:
                response = responses[0] if responses else None
                code = context.code()
                if not isinstance(code, grpc.StatusCode):
                    code = grpc.StatusCode.OK
                self._record(method, rule, headers, request, response, code, "")

        return _wrap(handler, audited)

    def _record(
        self,
        method: str,
        rule: RpcRule,
        headers: Mapping[str, str],
        request: Any,
        response: Any,
        code: grpc.StatusCode,
        message: str,
    ) -> None:
        target = field_text(request, rule.target) if rule.target and request is not None else ""
        if not target and rule.created and response is not None:
            target = field_text(response, rule.created)
        self._sink.submit(
            audit_record(
                source=self._source,
                rpc=method,
                outcome=code.name,
                headers=headers,
                identity=self._identity(headers),
                target=target,
                message=message,
            )
        )

    def _identity(self, headers: Mapping[str, str]) -> Identity | None:
        token = headers.get(IDENTITY_HEADER)
        if not token:
            return None
        try:
            return self._codec.decode(token)
        except FarmError:
            return None


Audited = Callable[[Any, Any], contextlib.AbstractAsyncContextManager[list[Any]]]


def _wrap(handler: grpc.RpcMethodHandler, audited: Audited) -> grpc.RpcMethodHandler:
    """`handler` run inside `audited(context, request)`; streamed requests are not kept."""
    if handler.unary_unary:
        unary_unary = handler.unary_unary

        async def call_unary_unary(request: Any, context: Any) -> Any:
            async with audited(context, request) as responses:
                response = await unary_unary(request, context)
                responses.append(response)
                return response

        return grpc.unary_unary_rpc_method_handler(
            call_unary_unary, handler.request_deserializer, handler.response_serializer
        )
    if handler.unary_stream:
        unary_stream = handler.unary_stream

        async def call_unary_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            async with audited(context, request):
                result = unary_stream(request, context)
                if inspect.isasyncgen(result):
                    async for response in result:
                        yield response
                else:
                    await result

        return grpc.unary_stream_rpc_method_handler(
            call_unary_stream, handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_unary:
        stream_unary = handler.stream_unary

        async def call_stream_unary(requests: Any, context: Any) -> Any:
            async with audited(context, None) as responses:
                response = await stream_unary(requests, context)
                responses.append(response)
                return response

        return grpc.stream_unary_rpc_method_handler(
            call_stream_unary, handler.request_deserializer, handler.response_serializer
        )
    stream_stream = handler.stream_stream

    async def call_stream_stream(requests: Any, context: Any) -> AsyncIterator[Any]:
        async with audited(context, None):
            result = stream_stream(requests, context)
            if inspect.isasyncgen(result):
                async for response in result:
                    yield response
            else:
                await result

    return grpc.stream_stream_rpc_method_handler(
        call_stream_stream, handler.request_deserializer, handler.response_serializer
    )
