"""The machinery of the farm's per-call interceptors: a method's handler wrapped once.

Each link (CallInterceptor) names, per method, the async context every call of the
method runs in (`around`); the call's headers come with the call (ServerCall.metadata).
A method's wrapped handler is made on its first call and kept, so a call costs a dict
lookup and the links' contexts, entered by one plain loop (CallChain), not a new
handler, request reader and stack of generator-based context managers per call.
"""

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from farm_core.scopes import OPEN_METHOD_PREFIXES

Metadata = Sequence[tuple[str, str | bytes]]
Continuation = Callable[[grpc.HandlerCallDetails], Any]


@dataclass(slots=True)
class ServerCall:
    """One call as an interceptor sees it around the handler."""

    context: grpc.aio.ServicerContext[Any, Any]
    # None when the requests are streamed: they are not kept.
    request: Any = None
    # Set once a unary response is made; streamed responses are not kept.
    response: Any = None
    # The call's headers (invocation metadata).
    metadata: Metadata = ()


class CallContext:
    """An async context one call runs in; links subclass it (cheaper than a generator's)."""

    __slots__ = ()

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        return False


class SyncContext(CallContext):
    """A plain context manager (a log or trace binding) as a call's context."""

    __slots__ = ("_inner",)

    def __init__(self, inner: AbstractContextManager[Any]) -> None:
        self._inner = inner

    async def __aenter__(self) -> None:
        self._inner.__enter__()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        self._inner.__exit__(kind, error, traceback)
        return False


Around = Callable[[ServerCall], CallContext]


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


def _headers(context: grpc.aio.ServicerContext[Any, Any]) -> Metadata:
    return context.invocation_metadata() or ()


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
            call = ServerCall(context, request, None, _headers(context))
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
            async with around(ServerCall(context, request, None, _headers(context))):
                async for response in run_stream(unary_stream(request, context)):
                    yield response

        return grpc.unary_stream_rpc_method_handler(
            call_unary_stream, _tolerant(handler.request_deserializer), handler.response_serializer
        )
    if handler.stream_unary:
        stream_unary = handler.stream_unary

        async def call_stream_unary(requests: Any, context: Any) -> Any:
            call = ServerCall(context, None, None, _headers(context))
            try:
                async with around(call):
                    call.response = await stream_unary(requests, context)
                    return call.response
            except grpc.aio.AbortError:
                await _drained(requests)
                raise

        return grpc.stream_unary_rpc_method_handler(
            call_stream_unary, handler.request_deserializer, handler.response_serializer
        )
    stream_stream = handler.stream_stream

    async def call_stream_stream(requests: Any, context: Any) -> AsyncIterator[Any]:
        async with around(ServerCall(context, None, None, _headers(context))):
            async for response in run_stream(stream_stream(requests, context)):
                yield response

    return grpc.stream_stream_rpc_method_handler(
        call_stream_stream, handler.request_deserializer, handler.response_serializer
    )


DRAIN_SECONDS = 2.0
"""How long a refused request stream is read on before its status goes out."""


async def _drained(requests: AsyncIterator[Any]) -> None:
    """Reads what the client still sends of a refused call (for up to DRAIN_SECONDS).

    A client whose write meets a call the server has already ended gets grpc's own
    INTERNAL ("Internal error from Core") instead of the server's status, so a refusal
    (UNAUTHENTICATED, RESOURCE_EXHAUSTED...) would read as a transport failure.
    """
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in requests:
                pass
    except (TimeoutError, grpc.RpcError, asyncio.InvalidStateError):
        pass


class CallInterceptor(grpc.aio.ServerInterceptor):
    """The base of the farm's interceptors: each call of a method runs inside `around`.

    Open methods (health, reflection) are left alone, and so is a method `around`
    gives no context for. A method's wrapped handler is made once and kept.
    """

    # The handler a method was found with, and what it was wrapped as (or itself).
    _wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]]

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        handler: grpc.RpcMethodHandler | None = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        try:
            wrapped = self._wrapped
        except AttributeError:
            wrapped = self._wrapped = {}
        found = wrapped.get(method)
        if found is not None and found[0] is handler:
            return found[1]
        around = None if method.startswith(OPEN_METHOD_PREFIXES) else self.around(method)
        result = handler if around is None else wrap_handler(handler, around)
        wrapped[method] = (handler, result)
        return result

    def around(self, method: str) -> Around | None:
        """The context each call of `method` runs in; None leaves the method's calls alone."""
        raise NotImplementedError


class _Chained(CallContext):
    """The contexts of one call's links, entered first to last and left last to first.

    As contextlib.AsyncExitStack: a context left with an error passes it on to the
    one outside it, or the error it raised instead; one that returns True swallows it.
    """

    __slots__ = ("_contexts", "_entered")

    def __init__(self, contexts: list[CallContext]) -> None:
        self._contexts = contexts
        self._entered = 0

    async def __aenter__(self) -> None:
        for context in self._contexts:
            try:
                await context.__aenter__()
            except BaseException as error:
                await self._leave(error)
                raise
            self._entered += 1

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        return await self._leave(error)

    async def _leave(self, error: BaseException | None) -> bool:
        """Leaves the entered contexts; True if `error` was swallowed, raises a new one."""
        pending = error
        for context in reversed(self._contexts[: self._entered]):
            try:
                kind = type(pending) if pending is not None else None
                traceback = pending.__traceback__ if pending is not None else None
                if await context.__aexit__(kind, pending, traceback):
                    pending = None
            except BaseException as raised:
                if raised is not pending and pending is not None and raised.__context__ is None:
                    raised.__context__ = pending
                pending = raised
        self._entered = 0
        if pending is None:
            return error is not None
        if pending is error:
            return False
        raise pending


class CallChain(CallInterceptor):
    """Several CallInterceptors as one, the first outermost: each call is wrapped once.

    As separate server interceptors each would wrap the method's handler anew on every
    call, one layer of handler and request reader each; chained, their contexts are
    entered in one layer, in the same order, and leave in the reverse one.
    """

    def __init__(self, *links: CallInterceptor) -> None:
        self._links = links

    def around(self, method: str) -> Around | None:
        arounds = [around for link in self._links if (around := link.around(method)) is not None]
        if len(arounds) <= 1:
            return arounds[0] if arounds else None

        def chained(call: ServerCall) -> CallContext:
            return _Chained([around(call) for around in arounds])

        return chained
