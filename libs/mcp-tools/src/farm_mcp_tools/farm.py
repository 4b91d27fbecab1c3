"""The farm as the tools reach it: SessionService and ArtifactService calls over gRPC.

`farm mcp` reaches them through Envoy with the user's API key; the MCP service
calls the scheduler and storage directly with the caller's signed identity, which
it has renewed (`refresh`) when it is about to expire. Both hand a `FarmApi` their
stubs and, on each call, the metadata that says who calls.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import grpc
from google.api import httpbody_pb2  # type: ignore[import-untyped]
from google.protobuf.message import Message

from farm.sessions.v1 import sessions_pb2, sessions_pb2_grpc
from farm.storage.v1 import artifacts_pb2, artifacts_pb2_grpc
from farm.tasks.v1 import tasks_pb2

Reply = TypeVar("Reply")

Credentials = Sequence[tuple[str, str]]
"""gRPC metadata naming the caller: `authorization: Bearer <key>` or `x-farm-identity`."""

Refresh = Callable[[Credentials, float], Awaitable[Credentials]]
"""Credentials as a call should carry them now (a renewed identity), within a time limit.

Raises FarmCallFailed when they cannot be had.
"""

# An artifact is at most 64 MiB; its message adds a little.
MAX_MESSAGE_BYTES = 65 * 1024 * 1024
CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
)
"""Options of the channels a FarmApi's stubs use: artifacts as large as the farm stores."""


# Codes that are no refusal: the farm (or a service behind it) could not take the call
# now, or did not answer it. The console words them alike (farm_console.farm.NO_ANSWER).
NO_ANSWER = {
    grpc.StatusCode.UNAVAILABLE: "the farm is unavailable",
    grpc.StatusCode.DEADLINE_EXCEEDED: "the farm did not answer in time",
}


class FarmCallFailed(Exception):
    """A farm call that failed; the message is the farm's, after its status code."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details

    @property
    def what_happened(self) -> str:
        """For a tool's answer: the farm refused, is unavailable, or did not answer."""
        return NO_ANSWER.get(self.code, "the farm refused")


@dataclass(frozen=True)
class Artifact:
    """An artifact's bytes and what they are."""

    data: bytes
    content_type: str


class FarmApi:
    """The calls the tools make, each with the caller's credentials and a time limit."""

    def __init__(
        self,
        sessions: sessions_pb2_grpc.SessionServiceStub,
        artifacts: artifacts_pb2_grpc.ArtifactServiceStub,
        public_url: str,
        refresh: Refresh | None = None,
    ) -> None:
        self._sessions = sessions
        self._artifacts = artifacts
        self._public_url = public_url.rstrip("/")
        self._refresh = refresh

    def artifact_link(self, artifact_id: str) -> str:
        """Where a user fetches the artifact with an API key (scope artifacts.read)."""
        return f"{self._public_url}/v1/artifacts/{artifact_id}:content"

    async def open_session(
        self, spec: sessions_pb2.SessionSpec, credentials: Credentials, time_limit: float
    ) -> sessions_pb2.Session:
        """CreateSession."""
        request = sessions_pb2.CreateSessionRequest(spec=spec)
        return await self._call(self._sessions.CreateSession, request, credentials, time_limit)

    async def run_command(
        self,
        session_id: str,
        command: sessions_pb2.SessionCommand,
        credentials: Credentials,
        time_limit: float,
    ) -> tasks_pb2.TaskResult:
        """RunSessionCommand."""
        request = sessions_pb2.RunSessionCommandRequest(id=session_id, command=command)
        return await self._call(self._sessions.RunSessionCommand, request, credentials, time_limit)

    async def close_session(
        self, session_id: str, credentials: Credentials, time_limit: float
    ) -> sessions_pb2.Session:
        """CloseSession (closing a closed session returns it unchanged)."""
        request = sessions_pb2.CloseSessionRequest(id=session_id)
        return await self._call(self._sessions.CloseSession, request, credentials, time_limit)

    async def artifact(
        self, artifact_id: str, credentials: Credentials, time_limit: float
    ) -> Artifact:
        """GetArtifactContent: the artifact's bytes."""
        request = artifacts_pb2.GetArtifactContentRequest(id=artifact_id)
        body: httpbody_pb2.HttpBody = await self._call(
            self._artifacts.GetArtifactContent, request, credentials, time_limit
        )
        return Artifact(data=bytes(body.data), content_type=str(body.content_type))

    async def _call(
        self,
        rpc: Callable[..., Awaitable[Reply]],
        request: Message,
        credentials: Credentials,
        time_limit: float,
    ) -> Reply:
        if self._refresh is not None:
            credentials = await self._refresh(credentials, time_limit)
        try:
            reply: Reply = await rpc(
                request, metadata=tuple(credentials), timeout=max(time_limit, 0.001)
            )
            return reply
        except grpc.aio.AioRpcError as error:
            raise FarmCallFailed(error.code(), error.details() or "") from error
