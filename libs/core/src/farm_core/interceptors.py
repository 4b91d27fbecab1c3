"""gRPC server interceptors written once for every service: metrics, logs, errors, identity."""

import contextlib
import functools
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from prometheus_client import Counter, Histogram

from farm_core.errors import FarmError
from farm_core.identity import (
    CONFINED_ROLES,
    IDENTITY_HEADER,
    TENANT_HEADER,
    CredentialRole,
    IdentityVerifier,
    require_operator,
    reset_current_identity,
    set_current_identity,
)
from farm_core.logs import log_context
from farm_core.scopes import (
    ANY_IDENTITY,
    NO_IDENTITY,
    OPEN_METHOD_PREFIXES,
    RPC_RULES,
    RpcRule,
)

log = logging.getLogger(__name__)


@dataclass
class ServerCall:
    """One call as an interceptor sees it around the handler."""

    context: grpc.aio.ServicerContext[Any, Any]
    # None when the requests are streamed: they are not kept.
    request: Any = None
    # Set once a unary response is made; streamed responses are not kept.
    response: Any = None


Around = Callable[[ServerCall], contextlib.AbstractAsyncContextManager[None]]
Continuation = Callable[[grpc.HandlerCallDetails], Any]
Metadata = Sequence[tuple[str, str | bytes]]

__all__ = [
    "CallChain",
    "CallInterceptor",
    "ErrorMappingInterceptor",
    "IdentityInterceptor",
    "LogContextInterceptor",
    "MetricsInterceptor",
    "ServerCall",
    "UnreadableRequest",
    "wrap_handler",
]

rpc_handled = Counter(
    "farm_grpc_server_handled_total", "RPCs handled, by method and outcome.", ["method", "code"]
)
rpc_seconds = Histogram(
    "farm_grpc_server_handling_seconds", "Time to handle an RPC, by method.", ["method"]
)


@dataclass(frozen=True)
class UnreadableRequest:
    """A request whose bytes do not parse as its message, in place of the message."""

    error: str

    async def refuse(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        """Ends the call INVALID_ARGUMENT (HTTP 400 through Envoy), saying why."""
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"the request cannot be read: {self.error}; a field may hold a value of the "
            "wrong type, e.g. an object where text belongs",
        )


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """`deserializer`, with bytes it cannot parse made an UnreadableRequest.

    gRPC ends a call whose request does not parse with INTERNAL (a 500 through
    Envoy); the client sent it, so the handler refuses it as INVALID_ARGUMENT.
    """
    if deserializer is None:
        return None

    def read(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError as error:
            return UnreadableRequest(str(error))

    return read


def wrap_handler(handler: grpc.RpcMethodHandler, around: Around) -> grpc.RpcMethodHandler:
    """Returns `handler` with every call run inside the async context `around(call)`.

    A unary request that does not parse is refused INVALID_ARGUMENT before `around`.
    """

    async def run_stream(result: Any) -> AsyncIterator[Any]:
        if inspect.isasyncgen(result):
            async for response in result:
                yield response
        else:
            await result

    if handler.unary_unary:
        unary_unary = handler.unary_unary

        async def call_unary_unary(request: Any, context: Any) -> Any:
            if isinstance(request, UnreadableRequest):
                await request.refuse(context)
            call = ServerCall(context, request)
            async with around(call):
                call.response = await unary_unary(request, context)
                return call.response

        return grpc.unary_unary_rpc_method_handler(
            call_unary_unary, _tolerant(handler.request_deserializer), handler.response_serializer
        )
    if handler.unary_stream:
        unary_stream = handler.unary_stream

        async def call_unary_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            if isinstance(request, UnreadableRequest):
                await request.refuse(context)
            async with around(ServerCall(context, request)):
                async for response in run_stream(unary_stream(request, context)):
                    yield response

        return grpc.unary_stream_rpc_method_handler(
            call_unary_stream, _tolerant(handler.request_deserializer), handler.response_serializer
        )
    if handler.stream_unary:
        stream_unary = handler.stream_unary

        async def call_stream_unary(requests: Any, context: Any) -> Any:
            call = ServerCall(context)
            async with around(call):
                call.response = await stream_unary(requests, context)
                return call.response

        return grpc.stream_unary_rpc_method_handler(
            call_stream_unary, handler.request_deserializer, handler.response_serializer
        )
    stream_stream = handler.stream_stream

    async def call_stream_stream(requests: Any, context: Any) -> AsyncIterator[Any]:
        async with around(ServerCall(context)):
            async for response in run_stream(stream_stream(requests, context)):
                yield response

    return grpc.stream_stream_rpc_method_handler(
        call_stream_stream, handler.request_deserializer, handler.response_serializer
    )


def _is_open(method: str) -> bool:
    return method.startswith(OPEN_METHOD_PREFIXES)


class CallInterceptor(grpc.aio.ServerInterceptor):
    """The base of the farm's interceptors: each call of a method runs inside `around`.

    Open methods (health, reflection) are left alone, and so is a method `around`
    gives no context for.
    """

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        handler: grpc.RpcMethodHandler | None = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or _is_open(method):
            return handler
        around = self.around(method, handler_call_details.invocation_metadata or ())
        return handler if around is None else wrap_handler(handler, around)

    def around(self, method: str, metadata: Metadata) -> Around | None:
        """The context each call of `method` runs in; None leaves the method's calls alone."""
        raise NotImplementedError


class CallChain(CallInterceptor):
    """Several CallInterceptors as one, the first outermost: each call is wrapped once.

    As separate server interceptors each would wrap the method's handler anew on every
    call, one layer of handler and request reader each; chained, their contexts are
    entered in one layer, in the same order, and leave in the reverse one.
    """

    def __init__(self, *links: CallInterceptor) -> None:
        self._links = links

    def around(self, method: str, metadata: Metadata) -> Around | None:
        arounds = [
            around for link in self._links if (around := link.around(method, metadata)) is not None
        ]
        if len(arounds) <= 1:
            return arounds[0] if arounds else None

        @contextlib.asynccontextmanager
        async def chained(call: ServerCall) -> AsyncIterator[None]:
            async with contextlib.AsyncExitStack() as stack:
                for around in arounds:
                    await stack.enter_async_context(around(call))
                yield

        return chained


class MetricsInterceptor(CallInterceptor):
    """Counts RPCs and times them, by method and status code."""

    # Each around() is a partial of one context manager function, not a function
    # defined and decorated anew on every call (as those that need the call's headers are).
    def around(self, method: str, metadata: Metadata) -> Around:
        return functools.partial(_measured, method)


@contextlib.asynccontextmanager
async def _measured(method: str, call: ServerCall) -> AsyncIterator[None]:
    started = time.perf_counter()
    code = "OK"
    try:
        yield
    except BaseException:
        status = call.context.code()
        code = status.name if isinstance(status, grpc.StatusCode) else "UNKNOWN"
        raise
    finally:
        rpc_seconds.labels(method).observe(time.perf_counter() - started)
        rpc_handled.labels(method, code).inc()


# What the target field (RpcRule.target) of a method's request names, by method or
# service prefix: the call's log lines carry it as their task or session id.
_LOGGED_TARGETS: Mapping[str, str] = {
    "/farm.tasks.v1.TaskService/": "task",
    "/farm.sessions.v1.SessionService/": "session",
    "/farm.admin.v1.AdminService/RequeueDeadLetter": "task",
}


def logged_ids(
    method: str, request: Any, rules: Mapping[str, RpcRule] = RPC_RULES
) -> dict[str, str]:
    """The task or session id a call of `method` with `request` is about, for log_context."""
    rule = rules.get(method)
    if rule is None or not rule.target or request is None:
        return {}
    for prefix, kind in _LOGGED_TARGETS.items():
        if method.startswith(prefix):
            target = getattr(request, rule.target, "")
            return {f"{kind}_id": target} if isinstance(target, str) and target else {}
    return {}


class LogContextInterceptor(CallInterceptor):
    """Every log line of a call about one task or session names it (see farm_core.logs)."""

    def around(self, method: str, metadata: Metadata) -> Around | None:
        if not RPC_RULES.get(method, RpcRule("")).target:
            return None
        return functools.partial(_bound_to_target, method)


@contextlib.asynccontextmanager
async def _bound_to_target(method: str, call: ServerCall) -> AsyncIterator[None]:
    with log_context(**logged_ids(method, call.request)):
        yield


class ErrorMappingInterceptor(CallInterceptor):
    """Turns typed domain errors into gRPC statuses; anything else is INTERNAL, logged once."""

    def around(self, method: str, metadata: Metadata) -> Around:
        return functools.partial(_mapped, method)


@contextlib.asynccontextmanager
async def _mapped(method: str, call: ServerCall) -> AsyncIterator[None]:
    try:
        yield
    except FarmError as error:
        await call.context.abort(error.code, error.message)
    except grpc.aio.AbortError:
        raise
    except Exception:
        log.exception("%s failed", method)
        await call.context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method}")


class IdentityInterceptor(CallInterceptor):
    """Admits a call only with a valid identity token holding the method's scope.

    `method_scopes` maps each full method name ("/farm.tasks.v1.TaskService/GetTask")
    to the scope it needs, or ANY_IDENTITY. A method with no rule is refused, so a
    new RPC cannot go out unprotected. A method whose rule in `rules` is operator_only
    also needs an operator; its refusal names `bootstrap_tenant` if given.
    """

    def __init__(
        self,
        codec: IdentityVerifier,
        method_scopes: Mapping[str, str],
        bootstrap_tenant: str = "",
        rules: Mapping[str, RpcRule] = RPC_RULES,
    ) -> None:
        self._codec = codec
        self._method_scopes = dict(method_scopes)
        self._bootstrap_tenant = bootstrap_tenant
        self._operator_actions = {m: r.operator_only for m, r in rules.items() if r.operator_only}

    def around(self, method: str, metadata: Metadata) -> Around | None:
        if self._method_scopes.get(method) == NO_IDENTITY:
            return None
        headers = dict(metadata)
        token = headers.get(IDENTITY_HEADER)
        acting_for = headers.get(TENANT_HEADER)

        @contextlib.asynccontextmanager
        async def admitted(call: ServerCall) -> AsyncIterator[None]:
            context = call.context
            required = self._method_scopes.get(method)
            if required is None:
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED, f"{method} has no access rule"
                )
            if not isinstance(token, str) or not token:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing caller identity")
            try:
                identity = self._codec.decode(str(token))
            except FarmError as error:
                await context.abort(error.code, error.message)
            confined_to = CONFINED_ROLES.get(identity.role) if identity.role else None
            if confined_to is not None and required != confined_to:
                # Not even the methods any identity may call: the role's own work only.
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"the {identity.role} credential may not call {method}",
                )
            if identity.role is CredentialRole.AGENT:
                # An agent acts for the tenant of the task it stores for.
                identity = identity.acting_for(str(acting_for or ""))
            if required != ANY_IDENTITY and not identity.has_scope(str(required)):
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"this API key lacks the scope '{required}' that {method} needs",
                )
            if method in self._operator_actions:
                try:
                    require_operator(
                        identity, self._operator_actions[method], self._bootstrap_tenant
                    )
                except FarmError as refusal:
                    await context.abort(refusal.code, refusal.message)
            binding = set_current_identity(identity)
            try:
                yield
            finally:
                reset_current_identity(binding)

        return admitted
