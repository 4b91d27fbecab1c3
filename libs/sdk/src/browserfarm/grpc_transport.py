"""The gRPC transport: the generated stubs on one grpc.aio channel to the farm's edge."""

from pathlib import Path
from typing import cast

import grpc

from browserfarm.config import ClientOptions
from farm.sessions.v1 import sessions_pb2_grpc
from farm.storage.v1 import artifacts_pb2_grpc
from farm.tasks.v1 import tasks_pb2_grpc

# An artifact is at most 64 MiB; its message adds a little.
MAX_MESSAGE_BYTES = 65 * 1024 * 1024

EDGE_CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # gRPC's own backoff between tries to reach an edge that went away grows to 120 s,
    # and a call made meanwhile fails at once (UNAVAILABLE) though the edge is back:
    # the calls' retries would all fail on a restarted farm. A try a second costs nothing.
    ("grpc.max_reconnect_backoff_ms", 1000),
)
"""Options of a channel to the edge (the SDK's, the CLI's): artifacts as large as the
farm stores, and an edge that went away tried again every second."""


def _channel(options: ClientOptions) -> grpc.aio.Channel:
    channel_options = EDGE_CHANNEL_OPTIONS
    if not options.secure:
        return grpc.aio.insecure_channel(options.target, options=channel_options)
    roots = Path(options.ca_file).read_bytes() if options.ca_file else None
    credentials = grpc.ssl_channel_credentials(root_certificates=roots)
    return grpc.aio.secure_channel(options.target, credentials, options=channel_options)


class GrpcTransport:
    """The farm's public services on one grpc.aio channel."""

    def __init__(self, options: ClientOptions) -> None:
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

    async def close(self) -> None:
        """Closes the channel."""
        await self._channel.close()
