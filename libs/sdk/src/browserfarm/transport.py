"""One gRPC channel to the farm's edge: the stubs, the metadata every call carries, retries.

A unary call that the farm answers UNAVAILABLE, or refuses with a rate limit, is made
again after a doubling backoff (a rate limit's wait is at least its Retry-After), up
to ClientOptions.max_attempts calls in all; every other status is raised at once as
the exception browserfarm.errors names for it.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

import grpc
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from browserfarm.config import ClientOptions
from browserfarm.errors import FarmError, RateLimited, Unavailable, from_rpc_error
from browserfarm.results import Result
from farm.sessions.v1 import sessions_pb2_grpc
from farm.storage.v1 import artifacts_pb2, artifacts_pb2_grpc
from farm.tasks.v1 import tasks_pb2_grpc

try:
    from opentelemetry import propagate
except ImportError:  # the otel extra is not installed: there is no trace to pass on
    propagate = None  # type: ignore[assignment]

Request = TypeVar("Request")
Reply = TypeVar("Reply")
Metadata = tuple[tuple[str, str], ...]

# An artifact is at most 64 MiB; its message adds a little.
MAX_MESSAGE_BYTES = 65 * 1024 * 1024
TRACE_HEADERS = ("traceparent", "tracestate")


def trace_metadata() -> Metadata:
    """The current OpenTelemetry trace context as W3C headers; none without an active span."""
    if propagate is None:
        return ()
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return tuple((name, carrier[name]) for name in TRACE_HEADERS if name in carrier)


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


def _channel(options: ClientOptions) -> grpc.aio.Channel:
    channel_options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    if not options.secure:
        return grpc.aio.insecure_channel(options.target, options=channel_options)
    roots = Path(options.ca_file).read_bytes() if options.ca_file else None
    credentials = grpc.ssl_channel_credentials(root_certificates=roots)
    return grpc.aio.secure_channel(options.target, credentials, options=channel_options)


class Transport:
    """The farm's public services on one grpc.aio channel, called with the caller's key."""

    def __init__(self, options: ClientOptions) -> None:
        self.options = options
        self._channel = _channel(options)
        # grpc ships no types: mypy cannot tell that the stubs are made on an aio channel.
        self.tasks = cast(
            "tasks_pb2_grpc.TaskServiceAsyncStub", tasks_pb2_grpc.TaskServiceStub(self._channel)
        )
        self.sessions = cast(
            "sessions_pb2_grpc.SessionServiceAsyncStub",
            sessions_pb2_grpc.SessionServiceStub(self._channel),
        )
        self.artifacts = cast(
            "artifacts_pb2_grpc.ArtifactServiceAsyncStub",
            artifacts_pb2_grpc.ArtifactServiceStub(self._channel),
        )

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
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, self.options.max_attempts)),
            wait=RetryWait(self.options.backoff_seconds, self.options.max_backoff_seconds),
            retry=retry_if_exception(retryable(self.options, idempotent=idempotent)),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self.call_once(rpc, request, timeout=timeout)
        raise AssertionError("tenacity ends with a reply or the last error")  # pragma: no cover

    async def call_once(
        self, rpc: Callable[..., Awaitable[Reply]], request: Request, *, timeout: float | None
    ) -> Reply:
        """One call of `rpc`, its failure raised as a FarmError."""
        try:
            return await rpc(
                request, metadata=self.metadata(), timeout=timeout or self.options.timeout
            )
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None

    async def artifact(self, result: Result | None, kind: str) -> bytes:
        """The bytes of the first artifact of `kind` in `result`."""
        found = result.artifact(kind) if result is not None else None
        if found is None:
            raise FarmError(f"the result holds no {kind.lower()} artifact")
        request = artifacts_pb2.GetArtifactContentRequest(id=found.id)
        body = await self.call(self.artifacts.GetArtifactContent, request)
        return bytes(body.data)

    async def close(self) -> None:
        """Closes the channel; calls still under way are cancelled."""
        await self._channel.close()
