"""The farm's public API as the console calls it: gRPC through the edge with the user's key.

The console holds no key of its own. Each call carries the signed-in user's API key
as its bearer, so Envoy's key check, scopes, tenant and rate limits apply exactly as
they would to the user's own client; replies come back as proto3 JSON dicts, the
shape docs/api.md describes. With the console's credential (role `console`, no RPC
takes it) each call also names the browser it is made for, so the check counts a
refused key against that browser rather than against the console's own address.
"""

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.api import httpbody_pb2  # type: ignore[import-untyped]
from google.protobuf.message import Message

from farm.admin.v1 import admin_pb2_grpc
from farm.audit.v1 import audit_pb2_grpc
from farm.auth.v1 import auth_pb2_grpc
from farm.sessions.v1 import sessions_pb2_grpc
from farm.storage.v1 import artifacts_pb2, artifacts_pb2_grpc
from farm.tasks.v1 import tasks_pb2_grpc
from farm_core.console_headers import CONSOLE_CLIENT_HEADER, CONSOLE_CREDENTIAL_HEADER
from farm_core.message_json import message_dict
from farm_core.transport import RECONNECT_OPTIONS

# An artifact is at most 64 MiB; its message adds a little.
MAX_MESSAGE_BYTES = 65 * 1024 * 1024

Reply = TypeVar("Reply", bound=Message)
Json = dict[str, Any]

BROWSER_ADDRESS: ContextVar[str] = ContextVar("browser_address", default="")
"""The IP address of the browser the request being served came from ("" if unknown)."""


# Codes that are no refusal, each with what a page says and its title: the farm (or a
# service behind it) could not take the call now, did not answer it, or failed at it (a
# fault of the farm's, not of the request); its message says which service and why.
NOT_REFUSED = {
    grpc.StatusCode.UNAVAILABLE: ("The farm is unavailable", "No answer"),
    grpc.StatusCode.DEADLINE_EXCEEDED: ("The farm did not answer in time", "No answer"),
    grpc.StatusCode.INTERNAL: ("The farm failed (server error)", "Server error"),
    grpc.StatusCode.UNKNOWN: ("The farm failed (server error)", "Server error"),
    grpc.StatusCode.DATA_LOSS: ("The farm failed (server error)", "Server error"),
}
REFUSED = ("The farm refused", "Refused")


class FarmError(Exception):
    """A call the farm refused, could not answer or failed at: its gRPC status and message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message

    @property
    def what_happened(self) -> str:
        """What happened, for a page: the farm refused, is unavailable, did not answer, failed."""
        return NOT_REFUSED.get(self.code, REFUSED)[0]

    @property
    def title(self) -> str:
        """The title of a page that shows it: Refused, No answer or Server error."""
        return NOT_REFUSED.get(self.code, REFUSED)[1]


class Farm:
    """Stubs of the public services on one channel to the edge."""

    def __init__(
        self, address: str, ca_file: Path | None, timeout: float, credential: str = ""
    ) -> None:
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            *RECONNECT_OPTIONS,
        ]
        if ca_file is None:
            self.channel = grpc.aio.insecure_channel(address, options=options)
        else:
            credentials = grpc.ssl_channel_credentials(root_certificates=ca_file.read_bytes())
            self.channel = grpc.aio.secure_channel(address, credentials, options=options)
        self.timeout = timeout
        self._credential = credential
        self.tasks = tasks_pb2_grpc.TaskServiceStub(self.channel)
        self.admin = admin_pb2_grpc.AdminServiceStub(self.channel)
        self.audit = audit_pb2_grpc.AuditServiceStub(self.channel)
        self.auth = auth_pb2_grpc.AuthServiceStub(self.channel)
        self.sessions = sessions_pb2_grpc.SessionServiceStub(self.channel)
        self.artifacts = artifacts_pb2_grpc.ArtifactServiceStub(self.channel)

    async def reply(
        self, key: str, method: Callable[..., Awaitable[Reply]], request: Message
    ) -> Reply:
        """The reply to one unary call made with `key`; FarmError if it fails."""
        try:
            return await method(request, metadata=self._metadata(key), timeout=self.timeout)
        except grpc.aio.AioRpcError as error:
            message = error.details() or error.code().name
            if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED and message == "Deadline Exceeded":
                # The console's own time limit ran out (gRPC's bare words): say which, and
                # that the farm, not the request, is what to look at.
                message = (
                    f"the farm did not answer within {self.timeout:g} s (a service hung or "
                    "overloaded?; FARM_CONSOLE_CALL_TIMEOUT_SECONDS); try again"
                )
            raise FarmError(error.code(), message) from error

    def _metadata(self, key: str) -> tuple[tuple[str, str], ...]:
        """The call's bearer key and, with the console's credential, the browser it is for."""
        bearer = ("authorization", f"Bearer {key}")
        browser = BROWSER_ADDRESS.get()
        if not self._credential or not browser:
            return (bearer,)
        return (
            bearer,
            (CONSOLE_CREDENTIAL_HEADER, self._credential),
            (CONSOLE_CLIENT_HEADER, browser),
        )

    async def call(
        self, key: str, method: Callable[..., Awaitable[Message]], request: Message
    ) -> Json:
        """The reply to one unary call made with `key`, as proto3 JSON."""
        return as_json(await self.reply(key, method, request))

    async def artifact_content(self, key: str, artifact_id: str) -> httpbody_pb2.HttpBody:
        """An artifact's bytes and content type."""
        request = artifacts_pb2.GetArtifactContentRequest(id=artifact_id)
        body: httpbody_pb2.HttpBody = await self.reply(
            key, self.artifacts.GetArtifactContent, request
        )
        return body

    async def close(self) -> None:
        """Closes the channel."""
        await self.channel.close()


def as_json(message: Message) -> Json:
    """`message` as the HTTP API's JSON (lowerCamelCase names, enums by name, `3` not `3.0`)."""
    return message_dict(message)
