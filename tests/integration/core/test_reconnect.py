"""A farm process tries a service, and a client the edge, again every second once it went away."""

import asyncio
import time

import grpc
import pytest

from browserfarm.config import ClientOptions
from browserfarm.grpc_transport import GrpcTransport
from farm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from farm_core.transport import aio_channel

# gRPC's own backoff (1 s growing by 1.6, ±20 %) tries at most 5 times in this window
# (0 s, then 1, 2.6 and 5.2 s at the soonest 0.8, 2.1 and 4.1, and 8.4 s at 7.4); once a
# second (±20 %), at least 7 times and about 9.
WINDOW_SECONDS = 8.0
LEAST_TRIES = 6


class RefusingService:
    """A TCP port that takes each connection and closes it at once: a service that is down."""

    def __init__(self) -> None:
        self.tries: list[float] = []
        self.address = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> "RefusingService":
        self._server = await asyncio.start_server(self._refuse, "127.0.0.1", 0)
        self.address = f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def _refuse(self, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.tries.append(time.monotonic())
        writer.close()


async def keep_calling(stub: tasks_pb2_grpc.TaskServiceStub) -> None:
    """One call that waits for the channel to connect until the window ends."""
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.GetTask(
            tasks_pb2.GetTaskRequest(id="task_x"), wait_for_ready=True, timeout=WINDOW_SECONDS
        )
    assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


@pytest.mark.slow
async def test_a_service_and_an_edge_that_went_away_are_tried_again_every_second() -> None:
    async with RefusingService() as service, RefusingService() as edge:
        channel = aio_channel(service.address, None)
        transport = GrpcTransport(ClientOptions(url=f"http://{edge.address}"))
        try:
            await asyncio.gather(
                keep_calling(tasks_pb2_grpc.TaskServiceStub(channel)),
                keep_calling(transport.tasks),
            )
        finally:
            await channel.close()
            await transport.close()

    assert len(service.tries) >= LEAST_TRIES, service.tries
    assert len(edge.tries) >= LEAST_TRIES, edge.tries
