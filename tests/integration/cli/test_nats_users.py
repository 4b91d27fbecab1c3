"""The embedded NATS's users: what an agent's NATS credential cannot do, on a real nats-server."""

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import cast

import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue
from sqlalchemy.ext.asyncio import AsyncEngine

from farm.queue.v1 import queue_pb2
from farm_cli.launcher import infra
from farm_cli.launcher.nats_users import (
    SHARED_AGENT_USER,
    NatsUser,
    farm_users,
    load_or_create_passwords,
    write_server_config,
)
from farm_cli.launcher.processes import ManagedProcess, free_ports, wait_until
from farm_core.artifact_expiry import (
    ARTIFACTS_EXPIRE_SUBJECT,
    ArtifactOwner,
    decode_answer,
    encode_expiry,
)
from farm_core.key_revocations import (
    REVOKED_KEYS_BUCKET,
    KeyRevocationWatch,
    revoked_keys_bucket,
)
from farm_core.nats_access import NatsAccess
from farm_core.nats_roles import NatsRole
from farm_core.queue import (
    AUDIT_STREAM,
    CANCEL_BUCKET,
    EVENT_STREAM,
    TASK_STREAM,
    Priority,
    audit_subject,
    connect,
    ensure_streams,
    event_subject,
    task_subject,
)
from farm_core.revocation_watch import RevocationWatch, revocations_bucket
from farm_core.revocations import REVOKED_CREDENTIALS_BUCKET, RevokedCredentials
from farm_core.sessions import SESSIONS_BUCKET, closed_subject, read_route, sessions_bucket
from farm_core.shared_buckets import cancel_bucket
from farm_storage.blobs import BlobStore
from farm_storage.ended_tasks import EndedTasks, TaskEnded
from farm_storage.expiry import ArtifactExpiry
from farm_storage.nats_connection import StorageNats
from tests.helpers import assert_eventually
from tests.integration.cli.nats_denials import Denials

pytestmark = pytest.mark.integration

# A denied request gets no answer: how long to wait for the answer that never comes.
DENIED_WAIT_SECONDS = 1.0


class Farm:
    """A nats-server with the farm's users, and each user's access."""

    def __init__(self, url: str, passwords: dict[str, str]) -> None:
        self.url = url
        self.passwords = passwords

    def access(self, user: str) -> NatsAccess:
        return NatsAccess(self.url, user, self.passwords[user])


@pytest.fixture(scope="module")
def farm_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    state = tmp_path_factory.mktemp("nats-users")
    users = [
        *farm_users(["agent-1", "agent-2"]),
        NatsUser(SHARED_AGENT_USER, NatsRole.SHARED_AGENT),
    ]
    passwords = load_or_create_passwords(state / "users.json", users)
    write_server_config(state / "server.json", users, passwords, tls=None)
    ports = infra.NatsPorts(*free_ports(2))
    spec = infra.nats_spec(ports, state / "data", state / "server.json")
    process = ManagedProcess(spec, state, state)
    process.start()
    try:
        wait_until(lambda: infra.nats_ready(ports), timeout=30, what="nats-server", process=process)
        yield Farm(f"nats://127.0.0.1:{ports.client}", passwords)
    finally:
        process.stop(timeout=5)


@pytest.fixture
async def scheduler(farm_nats: Farm) -> AsyncIterator[Client]:
    client = await connect(farm_nats.access("scheduler"), "test-scheduler")
    await ensure_streams(client.jetstream())
    yield client
    await client.close()


async def connect_agent(farm_nats: Farm, user: str) -> tuple[Client, Denials]:
    denials = Denials()
    client = await nats.connect(
        **farm_nats.access(user).connect_options(), error_cb=denials.on_error
    )
    return client, denials


async def test_an_agent_cannot_publish_a_task(farm_nats: Farm, scheduler: Client) -> None:
    subject = task_subject("", Priority.HIGH)
    seen = await scheduler.subscribe(subject)
    agent, denials = await connect_agent(farm_nats, "agent-1")
    try:
        await agent.publish(subject, b"forged task")
        await agent.flush()
        await denials.wait_for(subject)
        with pytest.raises(nats.errors.TimeoutError):
            await seen.next_msg(timeout=DENIED_WAIT_SECONDS)
        info = await scheduler.jetstream().stream_info(TASK_STREAM)
        assert info.state.messages == 0
    finally:
        await agent.close()


async def test_an_agent_reports_events_only_on_its_own_subjects(
    farm_nats: Farm, scheduler: Client
) -> None:
    forged = [
        event_subject("t1", "agent-2"),
        closed_subject("ses_0123456789abcdef", "agent-2"),
        "events.tasks.t1",  # the subject before NATS users bound the agent id
    ]
    agent, denials = await connect_agent(farm_nats, "agent-1")
    js = agent.jetstream(timeout=DENIED_WAIT_SECONDS)
    try:
        for subject in forged:
            with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
                await js.publish(subject, b"forged event")
            await denials.wait_for(subject)
        info = await scheduler.jetstream().stream_info(EVENT_STREAM, subjects_filter=">")
        assert not set(info.state.subjects or {}) & set(forged)
        # Its own subjects it may publish, and the stream stores them.
        own = [event_subject("t1", "agent-1"), closed_subject("ses_0123456789abcdef", "agent-1")]
        for subject in own:
            await agent.jetstream(timeout=5).publish(subject, b"event")
    finally:
        await agent.close()


async def test_an_agent_cannot_read_another_agents_inbox(
    farm_nats: Farm, scheduler: Client
) -> None:
    other_inbox = "_INBOX.agent-2.>"
    agent, denials = await connect_agent(farm_nats, "agent-1")
    try:
        listening = await agent.subscribe(other_inbox)
        await agent.flush()
        await denials.wait_for(other_inbox)
        await scheduler.publish("_INBOX.agent-2.reply.1", b"for agent-2 only")
        with pytest.raises(nats.errors.TimeoutError):
            await listening.next_msg(timeout=DENIED_WAIT_SECONDS)
    finally:
        await agent.close()


async def test_an_agent_cannot_read_the_audit_stream(farm_nats: Farm, scheduler: Client) -> None:
    agent, denials = await connect_agent(farm_nats, "agent-1")
    try:
        await agent.subscribe("audit.>")
        await denials.wait_for("audit.>")
        with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
            await agent.jetstream(timeout=DENIED_WAIT_SECONDS).stream_info(AUDIT_STREAM)
        # Its own audit records it may send, and nothing else of the stream.
        await agent.jetstream(timeout=5).publish(audit_subject("agent"), b"record")
    finally:
        await agent.close()


async def test_an_agent_cannot_create_or_delete_streams(farm_nats: Farm, scheduler: Client) -> None:
    agent, _ = await connect_agent(farm_nats, "agent-1")
    js = agent.jetstream(timeout=DENIED_WAIT_SECONDS)
    try:
        with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
            await js.add_stream(StreamConfig(name="STOLEN", subjects=["stolen.>"]))
        with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
            await js.delete_stream(TASK_STREAM)
        assert (await scheduler.jetstream().stream_info(TASK_STREAM)).config.name == TASK_STREAM
    finally:
        await agent.close()


def session_route(session_id: str, agent_id: str, endpoint: str) -> queue_pb2.SessionRoute:
    return queue_pb2.SessionRoute(
        session_id=session_id, tenant="acme", agent_id=agent_id, endpoint=endpoint
    )


@pytest.mark.parametrize("user", ["agent-1", SHARED_AGENT_USER])
async def test_an_agent_cannot_write_or_remove_a_sessions_route(
    farm_nats: Farm, scheduler: Client, user: str
) -> None:
    # A route decides whose browser a tenant's CDP attach reaches: a stolen agent
    # credential that could write one would send another tenant's attach to its machine.
    routes = await sessions_bucket(scheduler.jetstream())
    placed, unplaced = (f"ses_{secrets.token_hex(8)}" for _ in range(2))
    route = session_route(placed, "agent-2", "127.0.0.1:9")
    await routes.put(placed, route.SerializeToString())
    forged = session_route(placed, user, "203.0.113.9:9").SerializeToString()
    agent, denials = await connect_agent(farm_nats, user)
    js = agent.jetstream(timeout=DENIED_WAIT_SECONDS)
    # The bucket as `js.key_value` binds it (a look-up an agent may not make either).
    theirs = KeyValue(
        name=SESSIONS_BUCKET,
        stream=f"KV_{SESSIONS_BUCKET}",
        pre=f"$KV.{SESSIONS_BUCKET}.",
        js=js,
        direct=False,
    )
    try:
        with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
            await theirs.put(placed, forged)
        await denials.wait_for(f"$KV.{SESSIONS_BUCKET}.{placed}")
        with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
            await theirs.create(unplaced, forged)
        await denials.wait_for(f"$KV.{SESSIONS_BUCKET}.{unplaced}")
        with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
            await theirs.delete(placed)
        with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
            await js.key_value(SESSIONS_BUCKET)
    finally:
        await agent.close()
    assert (await read_route(routes, placed)).value == route
    assert (await read_route(routes, unplaced)).value is None


def test_passwords_are_kept_and_new_agents_get_theirs(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    first = load_or_create_passwords(path, farm_users(["agent-1"]))
    again = load_or_create_passwords(path, farm_users(["agent-1", "agent-2"]))
    assert again["agent-1"] == first["agent-1"]
    assert again["agent-2"] not in first.values()
    assert path.stat().st_mode & 0o777 == 0o600


async def test_storage_started_before_auth_waits_for_the_revocations_bucket(
    farm_nats: Farm, scheduler: Client, caplog: pytest.LogCaptureFixture
) -> None:
    # Storage may only read the bucket: a create of its own would go unanswered and hold
    # its revocations (and its calls, refused until they are loaded) for a request timeout.
    js = scheduler.jetstream()
    with contextlib.suppress(NotFoundError):
        await js.delete_key_value(REVOKED_CREDENTIALS_BUCKET)
    revoked = RevokedCredentials()
    watch = RevocationWatch(farm_nats.access("storage"), revoked)
    watch.start()
    try:
        await asyncio.sleep(0.3)  # the watch has looked for the bucket by now
        await revocations_bucket(js)  # as auth makes it when it starts
        await assert_eventually(lambda: revoked.loaded, within=10, message="not loaded")
    finally:
        await watch.close()
    assert not [record for record in caplog.records if "permissions violation" in record.message]


async def test_an_agent_hears_of_revoked_api_keys_but_cannot_name_one(
    farm_nats: Farm, scheduler: Client
) -> None:
    # The agent ends the sockets of each key named there: one that could write the
    # bucket could end another agent's clients' sockets.
    revoked_keys = await revoked_keys_bucket(scheduler.jetstream())  # as auth makes it
    heard: list[str] = []

    async def on_revoked(key_id: str) -> None:
        heard.append(key_id)

    watch = KeyRevocationWatch(farm_nats.access("agent-1"), on_revoked)
    watch.start()
    agent, denials = await connect_agent(farm_nats, "agent-1")
    try:
        await revoked_keys.put("key_00000000000000aa", b"")  # as auth names a revoked key
        await assert_eventually(
            lambda: "key_00000000000000aa" in heard, within=10, message="never heard"
        )
        theirs = await agent.jetstream(timeout=DENIED_WAIT_SECONDS).key_value(REVOKED_KEYS_BUCKET)
        with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
            await theirs.put("key_00000000000000bb", b"")
        await denials.wait_for(f"$KV.{REVOKED_KEYS_BUCKET}.key_00000000000000bb")
    finally:
        await agent.close()
        await watch.close()
    assert "key_00000000000000bb" not in heard


def ended_tasks_of_storage(farm_nats: Farm) -> tuple[EndedTasks, StorageNats]:
    """Storage's check of ended tasks on a connection as storage's NATS user, both started."""
    nats = StorageNats(farm_nats.access("storage"))
    nats.start()
    ended_tasks = EndedTasks(nats)
    ended_tasks.start()
    return ended_tasks, nats


async def refuses(ended_tasks: EndedTasks, task_id: str) -> bool:
    """Whether storage's check refuses an upload of `task_id` as ended."""
    try:
        await ended_tasks.check(task_id)
    except TaskEnded:
        return True
    return False


async def test_storage_reads_the_schedulers_cancelled_tasks(
    farm_nats: Farm, scheduler: Client
) -> None:
    cancelled = await cancel_bucket(scheduler.jetstream())
    await cancelled.put("task-cancelled", b"")  # as the scheduler marks a cancel
    ended_tasks, nats = ended_tasks_of_storage(farm_nats)

    try:
        await assert_eventually(
            lambda: refuses(ended_tasks, "task-cancelled"),
            within=10,
            message="the cancel was never read",
        )
        await ended_tasks.check("task-running")
    finally:
        await ended_tasks.close()
        await nats.close()


async def test_storage_started_before_the_scheduler_waits_for_its_bucket_quietly(
    farm_nats: Farm, scheduler: Client, caplog: pytest.LogCaptureFixture
) -> None:
    # Storage may only read the bucket of ended tasks: a create of its own went
    # unanswered, a permissions violation and a timeout logged as warnings at every start.
    js = scheduler.jetstream()
    with contextlib.suppress(NotFoundError):
        await js.delete_key_value(CANCEL_BUCKET)
    ended_tasks, nats = ended_tasks_of_storage(farm_nats)

    try:
        await asyncio.sleep(0.3)  # storage has looked for the bucket by now
        cancelled = await cancel_bucket(js)  # as the scheduler makes it when it starts
        await cancelled.put("task-cancelled", b"")
        await assert_eventually(
            lambda: refuses(ended_tasks, "task-cancelled"),
            within=10,
            message="the cancel was never read",
        )
    finally:
        await ended_tasks.close()
        await nats.close()
    assert [record.message for record in caplog.records if record.levelno >= logging.WARNING] == []


class CountingExpiry(ArtifactExpiry):
    """Storage's answering of artifact expiries, without the SQL and S3 it would delete from."""

    async def expire(self, owners: Sequence[ArtifactOwner]) -> tuple[int, list[ArtifactOwner]]:
        return len(owners), []


async def test_storage_answers_the_schedulers_artifact_expiries(
    farm_nats: Farm, scheduler: Client
) -> None:
    connection = StorageNats(farm_nats.access("storage"))
    connection.start()
    expiry = CountingExpiry(connection, cast(AsyncEngine, None), cast(BlobStore, None))
    expiry.start()
    owners = [ArtifactOwner("acme", "0123abcd")]

    async def answered() -> bool:
        try:
            reply = await scheduler.request(ARTIFACTS_EXPIRE_SUBJECT, encode_expiry(owners), 1)
        except (nats.errors.NoRespondersError, TimeoutError):
            return False  # not subscribed yet
        return decode_answer(reply.data) == 1

    try:
        await assert_eventually(answered, within=10, message="storage never answered")
    finally:
        await expiry.close()
        await connection.close()
