"""The transport interface under the client: the farm's services as stubs, over gRPC or HTTP.

A transport hands out one stub per service whose methods are named as the RPCs and
take and return the RPCs' messages, as a grpc.aio stub's do:
`await transport.tasks.GetTask(request, metadata=..., timeout=...)`; a server-streaming
method returns an async iterator. A failed call raises a FarmError (the HTTP
transport) or grpc.aio.AioRpcError (the gRPC one; browserfarm.calls maps it). What is
made of calls (retries, idempotency keys, error classes) is written once, above, in
browserfarm.calls and browserfarm.aio.
"""

import contextlib
from collections.abc import AsyncGenerator
from typing import Any, Literal, Protocol

TransportName = Literal["grpc", "http"]
"""How a client reaches the farm: gRPC (HTTP/2), or HTTP/JSON through Envoy's transcoding."""
TRANSPORTS: tuple[TransportName, ...] = ("grpc", "http")


class Transport(Protocol):
    """The farm's public services a client calls, and the connection they share."""

    @property
    def tasks(self) -> Any:
        """farm.tasks.v1.TaskService."""

    @property
    def sessions(self) -> Any:
        """farm.sessions.v1.SessionService."""

    @property
    def artifacts(self) -> Any:
        """farm.storage.v1.ArtifactService."""

    async def close(self) -> None:
        """Closes the connection; calls still under way are cancelled."""


async def _closing(transport: Transport) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await transport.close()


def closed_with_the_loop(transport: Transport) -> AsyncGenerator[None, None]:
    """A guard that closes `transport` when the running loop shuts down; keep a reference.

    Its aclose() closes the transport at once. A transport's connections belong to the
    loop they were opened on, and once that loop is closed they cannot be closed any
    more (their sockets would be left to the garbage collector, which warns
    ResourceWarning). asyncio.run() and asyncio.Runner finalize the async generators
    still open on their loop before they close it; this guard is one, started here,
    so the transport is closed on its loop then, though the client is not.
    """
    guard = _closing(transport)
    # Its first step registers it with the running loop and stops at its `yield`.
    with contextlib.suppress(StopIteration):
        guard.__anext__().send(None)
    return guard
