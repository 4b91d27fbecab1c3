"""The CLI's connection to the farm: gRPC through Envoy with the caller's API key.

A command builds its request, then makes its call with `call_and_print` (one reply
printed as JSON), `list_and_print` (a List, one page or all of them) or `call_farm`
(a reply it handles itself). A gRPC error ends the command in `main`. Every call of
one command carries the same W3C `traceparent`: the caller's (TRACEPARENT), or a
new trace's.

Importing this module is cheap: grpc, the stubs and the tracing helpers are imported
when a command connects, so building the parser of every command costs none of them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias, TypeVar

from farm_cli.console import print_message
from farm_cli.pages import every_page

if TYPE_CHECKING:
    import grpc
    from google.protobuf.message import Message

    from farm.admin.v1 import admin_pb2_grpc
    from farm.audit.v1 import audit_pb2_grpc
    from farm.auth.v1 import auth_pb2_grpc
    from farm.sessions.v1 import sessions_pb2_grpc
    from farm.storage.v1 import artifacts_pb2_grpc, baselines_pb2_grpc, profiles_pb2_grpc
    from farm.tasks.v1 import tasks_pb2_grpc

# How long one ordinary call may take.
CALL_TIMEOUT = 30.0
# RunTask and RunSessionCommand wait up to one attempt's (one command's) 300 s limit;
# Envoy's routes for them allow 330 s (envoy/envoy.yaml.j2), and so does the CLI.
RUN_TIMEOUT = 330.0

Reply = TypeVar("Reply", bound="Message")


@dataclass(frozen=True)
class FarmConnection:
    """Stubs of the public services on one channel, and the metadata every call carries."""

    channel: grpc.Channel
    metadata: tuple[tuple[str, str], ...]

    @property
    def tasks(self) -> tasks_pb2_grpc.TaskServiceStub:
        """farm.tasks.v1.TaskService."""
        from farm.tasks.v1 import tasks_pb2_grpc

        return tasks_pb2_grpc.TaskServiceStub(self.channel)

    @property
    def artifacts(self) -> artifacts_pb2_grpc.ArtifactServiceStub:
        """farm.storage.v1.ArtifactService."""
        from farm.storage.v1 import artifacts_pb2_grpc

        return artifacts_pb2_grpc.ArtifactServiceStub(self.channel)

    @property
    def baselines(self) -> baselines_pb2_grpc.BaselineServiceStub:
        """farm.storage.v1.BaselineService."""
        from farm.storage.v1 import baselines_pb2_grpc

        return baselines_pb2_grpc.BaselineServiceStub(self.channel)

    @property
    def profiles(self) -> profiles_pb2_grpc.ProfileServiceStub:
        """farm.storage.v1.ProfileService."""
        from farm.storage.v1 import profiles_pb2_grpc

        return profiles_pb2_grpc.ProfileServiceStub(self.channel)

    @property
    def auth(self) -> auth_pb2_grpc.AuthServiceStub:
        """farm.auth.v1.AuthService."""
        from farm.auth.v1 import auth_pb2_grpc

        return auth_pb2_grpc.AuthServiceStub(self.channel)

    @property
    def sessions(self) -> sessions_pb2_grpc.SessionServiceStub:
        """farm.sessions.v1.SessionService."""
        from farm.sessions.v1 import sessions_pb2_grpc

        return sessions_pb2_grpc.SessionServiceStub(self.channel)

    @property
    def admin(self) -> admin_pb2_grpc.AdminServiceStub:
        """farm.admin.v1.AdminService."""
        from farm.admin.v1 import admin_pb2_grpc

        return admin_pb2_grpc.AdminServiceStub(self.channel)

    @property
    def audit(self) -> audit_pb2_grpc.AuditServiceStub:
        """farm.audit.v1.AuditService."""
        from farm.audit.v1 import audit_pb2_grpc

        return audit_pb2_grpc.AuditServiceStub(self.channel)

    def call(
        self,
        rpc: Callable[..., Reply],
        request: Message,
        *,
        timeout: float = CALL_TIMEOUT,
    ) -> Reply:
        """`rpc` (one of the stubs' methods) called with `request` and the caller's key."""
        return rpc(request, metadata=self.metadata, timeout=timeout)


@contextmanager
def connect(
    environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Iterator[FarmConnection]:
    """A connection to the farm with `authorization: Bearer <key>`, closed on exit.

    Which farm and which key: see target.py.
    """
    import grpc

    from browserfarm.grpc_transport import EDGE_CHANNEL_OPTIONS
    from farm_cli.target import api_key, farm_target
    from farm_core.trace_context import TRACEPARENT

    env = os.environ if environ is None else environ
    folder = Path.cwd() if cwd is None else cwd
    # The farm first: in a FARM_HOME where no farm runs (a new one has no admin key
    # yet either), "no farm to call ... start it" says what to do, "no API key" does not.
    target = farm_target(env, folder)
    key = api_key(env, folder)
    channel = (
        grpc.secure_channel(target.address, target.credentials(), options=EDGE_CHANNEL_OPTIONS)
        if target.secure
        else grpc.insecure_channel(target.address, options=EDGE_CHANNEL_OPTIONS)
    )
    with channel:
        yield FarmConnection(
            channel,
            (("authorization", f"Bearer {key}"), (TRACEPARENT, call_traceparent(env))),
        )


def call_traceparent(environ: Mapping[str, str]) -> str:
    """The trace a command's calls join: TRACEPARENT's when it names one, else a new one."""
    from farm_core.trace_context import new_traceparent, span_context_of

    given = environ.get("TRACEPARENT", "").strip()
    return given if span_context_of(given).is_valid else new_traceparent()


RpcOf: TypeAlias = Callable[[FarmConnection], Callable[..., Reply]]
"""The RPC a command calls, picked from a connection: `lambda farm: farm.tasks.GetTask`."""


def call_farm(rpc: RpcOf[Reply], request: Message, *, timeout: float = CALL_TIMEOUT) -> Reply:
    """Connects, calls `rpc` with `request` and the caller's key, and returns the reply."""
    with connect() as farm:
        return farm.call(rpc(farm), request, timeout=timeout)


def call_and_print(rpc: RpcOf[Message], request: Message, *, timeout: float = CALL_TIMEOUT) -> int:
    """Calls `rpc` with `request` and prints the reply as JSON; the exit code, 0."""
    print_message(call_farm(rpc, request, timeout=timeout))
    return 0


def list_and_print(
    rpc: RpcOf[Message],
    request: Message,
    items: str,
    *,
    every: bool = True,
    limit: int = 0,
    page_size: int = 0,
    every_field: bool = True,
) -> int:
    """Calls the List `rpc` and prints the reply as JSON; the exit code, 0.

    With `every`, follows the page tokens and prints every page's `items` in one
    reply (at most `limit` of them, asking pages of at most `page_size`; see
    every_page); without, prints the one page `request` asks for. Without
    `every_field`, fields that are not set are left out, but for `items`: an empty
    list is printed, for scripts that read it.
    """
    with connect() as farm:

        def call(page_request: Message) -> Message:
            return farm.call(rpc(farm), page_request)

        if every:
            listed = every_page(call, request, items, limit=limit, page_size=page_size)
        else:
            listed = call(request)
    print_message(listed, every_field=every_field, keep=items)
    return 0
