"""Helpers for tests of every level: bounded waits, TaskSpecs, services and listeners.

Every test that waits for something to happen uses one of the two waits, never a loop
of its own: `assert_eventually` in a coroutine, `eventually` in a plain function; one
that checks that work ends (is cut short, gives up) awaits it `ends_without_hanging`.
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, Self, TypeVar

import grpc
import pytest
from google.protobuf import json_format
from sqlalchemy import event as sql_event
from sqlalchemy.ext.asyncio import AsyncEngine

from farm.tasks.v1 import tasks_pb2
from farm_core.free_ports import free_port
from farm_core.grants import GrantNames, GrantSigner, UploadGrant
from farm_core.identity import CredentialRole, IdentitySigner
from farm_core.identity_keys import load_private_key, new_private_key, private_pem, public_pem
from farm_core.server import Service, ServiceHost
from farm_core.settings import FarmSettings

Found = TypeVar("Found")

Message = str | Callable[[], str]
"""What a failed wait says: a text, or a function that describes the state it ended in."""


def _fail(message: Message, within: float) -> NoReturn:
    text = message() if callable(message) else message
    pytest.fail(f"{text} within {within} s")


async def assert_eventually(
    check: Callable[[], Awaitable[object]] | Callable[[], object],
    *,
    within: float = 10.0,
    interval: float = 0.05,
    message: Message = "condition not met",
) -> None:
    """Awaits until `check()` is true; fails the test after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            _fail(message, within)
        await asyncio.sleep(interval)


def eventually(
    check: Callable[[], Found | None],
    *,
    within: float = 10.0,
    interval: float = 0.05,
    message: Message = "condition not met",
) -> Found:
    """Calls `check()` until it returns something true, and returns that; blocks the thread.

    Fails the test after `within` seconds.
    """
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            _fail(message, within)
        time.sleep(interval)


async def ends_without_hanging(work: Awaitable[Found], *, guard: float, what: str) -> Found:
    """`work`'s result; fails the test if `work` has not ended after `guard` seconds.

    For a promise that work ends (is cut short, gives up) rather than how fast it does:
    the guard stands far beyond the bound under test, so a loaded machine does not trip
    it, while work that would never end still fails the test with a clear message.
    """
    try:
        async with asyncio.timeout(guard) as guarded:
            return await work
    except TimeoutError:
        if guarded.expired():
            pytest.fail(f"{what} had not ended after {guard} s: it hangs")
        raise


def task_spec(**fields: Any) -> tasks_pb2.TaskSpec:
    """A TaskSpec from its JSON form; a screenshot of example.com unless told otherwise.

    A field given as None is left out (`screenshot=None` for a spec without one).
    """
    body: dict[str, Any] = {"url": "https://example.com/", "screenshot": {}, **fields}
    return json_format.ParseDict(
        {key: value for key, value in body.items() if value is not None}, tasks_pb2.TaskSpec()
    )


# A stop takes the grace and, with NATS away, the audit flush; a hung one fails the test.
STOP_WITHIN_SECONDS = 30.0


@contextlib.asynccontextmanager
async def serving(
    service: Service, settings: FarmSettings, *, credentials: bool = True
) -> AsyncIterator[ServiceHost]:
    """`service` served in-process on a free port until the block ends.

    With `credentials`, once it has loaded the revoked credentials (until then it refuses
    every farm process's credential as unavailable); without, at once (a test without
    NATS that shows it no credential).
    """
    host = ServiceHost(service, settings, free_port())
    await host.start()
    try:
        if credentials:
            await assert_eventually(
                lambda: host.credentials_checkable,
                message=f"{service.name} never loaded the revoked credentials",
            )
        yield host
    finally:
        async with asyncio.timeout(STOP_WITHIN_SECONDS):
            await host.stop(1)


AddServicer = Callable[[Any, grpc.aio.Server], None]


@dataclass
class StandInService:
    """A farm service for tests: one servicer behind the real server's checks; no state."""

    name: str
    method_scopes: Mapping[str, str]
    servicer: Any
    add_servicer: AddServicer
    service_name: str
    """The full name of the servicer's gRPC service, e.g. "farm.auth.v1.AuthService"."""

    async def start(self) -> None:
        """Nothing to connect."""

    def register(self, server: grpc.aio.Server) -> Sequence[str]:
        self.add_servicer(self.servicer, server)
        return [self.service_name]

    async def drain(self, grace_seconds: float) -> None:
        """No work in flight."""

    async def close(self) -> None:
        """Nothing to release."""


@dataclass
class TcpListener:
    """A TCP server on `host` at a free port that counts the connections reaching it.

    A subclass says how to answer one in `answer`; errors of a peer that goes away
    mid-way end the connection quietly. `async with` serves it for the block.
    """

    host: str
    port: int = 0
    connections: int = 0
    # Connections it has finished with, so a test can wait until what reached it is recorded.
    ended: int = 0
    server: asyncio.Server | None = None
    quiet_errors: tuple[type[Exception], ...] = (asyncio.IncompleteReadError, ConnectionError)

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.answer(reader, writer)
        except self.quiet_errors:
            pass
        finally:
            writer.close()
            self.ended += 1


# The farm's identity key pair for tests that start services in-process: auth (and
# tests that act as auth) sign with the private key, services get the public key.
TEST_IDENTITY_KEY = private_pem(new_private_key())
TEST_PUBLIC_KEY = public_pem(load_private_key(TEST_IDENTITY_KEY))
TEST_SIGNER = IdentitySigner(TEST_IDENTITY_KEY)


def agent_credential(name: str = "agent-test") -> str:
    """An agent's credential signed with the test identity key."""
    return TEST_SIGNER.credential(CredentialRole.AGENT, name)


TEST_GRANT_KEY = private_pem(new_private_key())
TEST_GRANT_PUBLIC_KEY = public_pem(load_private_key(TEST_GRANT_KEY))
TEST_GRANTS = GrantSigner(TEST_GRANT_KEY)


def grant_for(
    owner_id: str,
    tenant: str,
    max_artifact_bytes: int = 0,
    profiles: Sequence[str] = (),
    baselines: Sequence[str] = (),
) -> str:
    """The scheduler's upload grant for `owner_id` of `tenant`, signed with the test grant key.

    It names `profiles` (to load and save) and `baselines`, as a task's spec would.
    """
    names = frozenset(
        [GrantNames.profile(name, save=True) for name in profiles]
        + [GrantNames.baseline(name) for name in baselines]
    )
    return TEST_GRANTS.sign(UploadGrant(owner_id, tenant, max_artifact_bytes, names=names), 600)


@contextlib.contextmanager
def sql_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements `engine` runs meanwhile (BEGIN and COMMIT are not statements here)."""
    seen: list[str] = []

    def note(*args: Any) -> None:
        seen.append(args[2])

    sync_engine = engine.sync_engine
    sql_event.listen(sync_engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sql_event.remove(sync_engine, "before_cursor_execute", note)


SCRIPT_STEP_CHARS = 30_000


def evaluate_steps(total_chars: int) -> list[tasks_pb2.Step]:
    """Evaluate steps with `total_chars` characters of script between them."""
    steps = []
    while total_chars > 0:
        chars = min(total_chars, SCRIPT_STEP_CHARS)
        steps.append(tasks_pb2.Step(evaluate="1" + " " * (chars - 1)))
        total_chars -= chars
    return steps
