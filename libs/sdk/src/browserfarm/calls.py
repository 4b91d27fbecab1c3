"""The calls a client makes, over whichever transport: metadata, retries, error classes.

A unary call that the farm answers UNAVAILABLE, or refuses with a rate limit, is made
again after a doubling backoff (a rate limit's wait is at least its Retry-After), up
to ClientOptions.max_attempts calls in all; every other status is raised at once as
the exception browserfarm.errors names for it. This is the one place that does so,
for the gRPC and the HTTP transport alike.
"""

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from browserfarm.config import ClientOptions
from browserfarm.errors import (
    CLIENT_DEADLINE,
    FarmError,
    InvalidArgument,
    RateLimited,
    Timeout,
    Unavailable,
    from_rpc_error,
)
from browserfarm.grpc_transport import GrpcTransport
from browserfarm.http_transport import HttpTransport
from browserfarm.results import Result
from browserfarm.transport import Transport, closed_with_the_loop
from farm.storage.v1 import artifacts_pb2

try:
    from opentelemetry import propagate
except ImportError:  # the otel extra is not installed: there is no trace to pass on
    propagate = None  # type: ignore[assignment]

Request = TypeVar("Request")
Reply = TypeVar("Reply")
Metadata = tuple[tuple[str, str], ...]

TRACE_HEADERS = ("traceparent", "tracestate")


def trace_metadata() -> Metadata:
    """The current OpenTelemetry trace context as W3C headers; none without an active span."""
    if propagate is None:
        return ()
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return tuple((name, carrier[name]) for name in TRACE_HEADERS if name in carrier)


CLOSED = "the client is closed: make a new one, or use it inside its `with`"
"""RuntimeError's message for a call on a client after its close()."""
CLOSED_UNDER_WAY = "the client was closed while this call was under way"
"""RuntimeError's message for a call that the client's close() ended."""
LEFTOVER_SECONDS = 30.0
"""How long close() waits for the clean-up of calls their callers gave up on (a session
the farm opened after its open was cancelled) before it cancels what is left."""


def _cancelled_by_its_caller() -> bool:
    """Whether the running task is being cancelled (asyncio.wait_for, task.cancel())."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def seconds_or_default(timeout: float | None, default: float) -> float:
    """`timeout` (None: `default`); InvalidArgument naming it unless it is above 0.

    A limit of 0 would give up before the call is made, so it is refused, not read as unset.
    """
    if timeout is None:
        return default
    if not timeout > 0:
        raise InvalidArgument(
            f"timeout: seconds above 0 (or None for the default, {default:g} s), not {timeout!r}"
        )
    return timeout


@dataclass(frozen=True)
class RetryWait:
    """Tenacity's wait: a doubling backoff, never shorter than a rate limit's Retry-After."""

    first_seconds: float
    max_seconds: float

    def __call__(self, retry_state: RetryCallState) -> float:
        """The wait before the next attempt."""
        backoff = min(
            self.max_seconds, self.first_seconds * 2.0 ** (retry_state.attempt_number - 1)
        )
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, RateLimited):
            return max(backoff, error.retry_after)
        return backoff


def retryable(options: ClientOptions, *, idempotent: bool) -> Callable[[BaseException], bool]:
    """Which failures a call is made again after.

    Rate limits (the edge refused the call, so it did nothing), and for an idempotent
    call UNAVAILABLE too.
    """

    def worth_another_try(error: BaseException) -> bool:
        if isinstance(error, RateLimited):
            return error.retry_after <= options.max_retry_after
        return idempotent and isinstance(error, Unavailable)

    return worth_another_try


def open_transport(options: ClientOptions) -> Transport:
    """The transport ClientOptions.transport names."""
    if options.transport == "http":
        return HttpTransport(options)
    return GrpcTransport(options)


class Calls:
    """The farm's public services, called with the caller's key over one transport.

    A gRPC channel (and an httpx pool) belongs to the event loop it is first used on,
    so the transport is opened on the loop of the first call, not where the client is
    made (which may be no loop at all: a client made at import time). A call on
    another loop while that one still runs raises RuntimeError saying so; once the
    first loop is closed (one asyncio.run() after another), a new transport is opened;
    the first was closed as its loop shut down (browserfarm.transport.closed_with_the_loop).
    """

    def __init__(self, options: ClientOptions, transport: Transport | None = None) -> None:
        self.options = options
        self._transport = transport
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._guard: AsyncGenerator[None, None] | None = None
        self._leftovers: set[asyncio.Task[None]] = set()
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._transport is None:
            self._transport = open_transport(options)
        self._guard = closed_with_the_loop(self._transport)

    @property
    def transport(self) -> Transport:
        """The transport, opened on the running loop (see the class)."""
        if self._closed:
            raise RuntimeError(CLOSED)
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None and not self._loop.is_closed():
                raise RuntimeError(
                    "this browserfarm.AsyncClient is in use on another event loop, which "
                    "is still running: make one client for each loop"
                )
            if self._loop is not None:
                # The loop it belonged to is gone; its guard closed it as that loop shut down.
                self._transport = None
                self._guard = None
            self._loop = loop
        if self._transport is None:
            self._transport = open_transport(self.options)
        if self._guard is None:
            self._guard = closed_with_the_loop(self._transport)
        return self._transport

    @property
    def tasks(self) -> Any:
        """farm.tasks.v1.TaskService's stub."""
        return self.transport.tasks

    @property
    def sessions(self) -> Any:
        """farm.sessions.v1.SessionService's stub."""
        return self.transport.sessions

    @property
    def artifacts(self) -> Any:
        """farm.storage.v1.ArtifactService's stub."""
        return self.transport.artifacts

    @property
    def authorization(self) -> tuple[str, str]:
        """The header that carries the API key."""
        return ("authorization", f"Bearer {self.options.api_key}")

    def metadata(self) -> Metadata:
        """What one call carries: the API key and the caller's current trace, if any."""
        return (self.authorization, *trace_metadata())

    async def call(
        self,
        rpc: Callable[..., Awaitable[Reply]],
        request: Request,
        *,
        timeout: float | None = None,
        idempotent: bool = True,
    ) -> Reply:
        """`rpc` (a stub's method) called with `request`, retried as the module says."""
        limit = seconds_or_default(timeout, self.options.timeout)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, self.options.max_attempts)),
            wait=RetryWait(self.options.backoff_seconds, self.options.max_backoff_seconds),
            retry=retry_if_exception(retryable(self.options, idempotent=idempotent)),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self.call_once(rpc, request, timeout=limit)
        raise AssertionError("tenacity ends with a reply or the last error")  # pragma: no cover

    async def call_once(
        self, rpc: Callable[..., Awaitable[Reply]], request: Request, *, timeout: float | None
    ) -> Reply:
        """One call of `rpc`, its failure raised as a FarmError."""
        limit = seconds_or_default(timeout, self.options.timeout)
        if self._closed:
            raise RuntimeError(CLOSED)
        try:
            return await rpc(request, metadata=self.metadata(), timeout=limit)
        except (grpc.aio.AioRpcError, FarmError, RuntimeError, asyncio.CancelledError) as error:
            # close() ended the call: grpc.aio raises CancelledError into a task that no one
            # cancelled (gather() and TaskGroup would take it for a cancellation), httpx a
            # read error or a RuntimeError of its own. A caller's own cancellation goes on.
            if self._closed and not _cancelled_by_its_caller():
                raise RuntimeError(CLOSED_UNDER_WAY) from None
            if isinstance(error, grpc.aio.AioRpcError):
                raise self._named(from_rpc_error(error), limit) from None
            if isinstance(error, Unavailable | Timeout):
                raise self._named(error, limit) from error.__cause__
            raise

    def _named(self, error: FarmError, limit: float) -> FarmError:
        """`error`, naming the farm's URL if Unavailable, the time limit if the call ran out of it.

        A farm that is down and a mistyped URL look alike; "Deadline Exceeded" says no more
        than that a limit passed, not which, nor how long it was.
        """
        if isinstance(error, Timeout) and error.message == CLIENT_DEADLINE:
            return Timeout(
                f"the farm at {self.options.url} did not answer within {limit:g} s "
                "(the call's time limit: the client's timeout, or the method's timeout=)"
            )
        if not isinstance(error, Unavailable) or self.options.url in error.message:
            return error
        return Unavailable(f"the farm at {self.options.url}: {error.message}")

    async def artifact(self, result: Result | None, kind: str) -> bytes:
        """The bytes of the first artifact of `kind` in `result`."""
        found = result.artifact(kind) if result is not None else None
        if found is None:
            raise FarmError(f"the result holds no {kind.lower()} artifact")
        return await self.content(found.id)

    async def content(self, artifact_id: str, timeout: float | None = None) -> bytes:
        """The bytes of the artifact `artifact_id`, within `timeout` (None: the client's)."""
        request = artifacts_pb2.GetArtifactContentRequest(id=artifact_id)
        body = await self.call(self.artifacts.GetArtifactContent, request, timeout=timeout)
        return bytes(body.data)

    def clean_up_after(self, cleanup: Awaitable[None]) -> None:
        """Runs `cleanup` on, though its caller gave up; close() waits for it (LEFTOVER_SECONDS)."""
        task = asyncio.ensure_future(cleanup)
        self._leftovers.add(task)
        task.add_done_callback(self._leftovers.discard)

    async def close(self) -> None:
        """Closes the transport; calls still under way and later ones raise RuntimeError.

        Clean-ups still under way (clean_up_after) first get LEFTOVER_SECONDS to end.
        A transport of a loop that is closed has nothing left to close on it.
        """
        if self._leftovers:
            _, unfinished = await asyncio.wait(self._leftovers, timeout=LEFTOVER_SECONDS)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        self._closed = True
        if self._transport is None or self._loop is not asyncio.get_running_loop():
            return
        transport, self._transport = self._transport, None
        guard, self._guard = self._guard, None
        if guard is None:
            await transport.close()
        else:
            await guard.aclose()
