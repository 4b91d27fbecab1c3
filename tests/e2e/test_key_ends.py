"""Long-lived streams end when the key that opened them stops being valid.

A session's CDP and live-frames sockets end when their key expires or, after a
rotation, when the old secret they were opened with reaches its grace end; a
WatchTask stream, and a RunTask call waiting for its task, ends when its key is
revoked or expires. Other keys' streams go on.
On the shared farm.
"""

import secrets
from collections.abc import Callable, Iterator

import aiohttp
import grpc
import pytest

from farm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import Client, KeyFactory, http_client
from tests.e2e.sessions_api import Sessions, assert_drives, ends_of
from tests.helpers import eventually
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]

KEY_TTL_SECONDS = 5
"""The expiring keys' lifetime: long enough to open their streams first."""
GRACE_SECONDS = 5
"""The rotated key's grace for its old secret: long enough to open a socket with it first."""


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_a_key_that_expires_ends_the_sockets_it_opened_and_no_other(
    farm: LocalFarm, make_key: KeyFactory
) -> None:
    tenant = f"expiring-{secrets.token_hex(4)}"
    kept = make_key("sessions", tenant=tenant)
    with http_client(farm, kept.secret) as http:
        sessions = Sessions(http)
        session = sessions.create()
        cdp = session["cdpUrl"]
        try:
            async with aiohttp.ClientSession() as client:
                other = await client.ws_connect(cdp, headers=bearer(kept.secret))
                expiring = make_key("sessions", tenant=tenant, ttl_seconds=KEY_TTL_SECONDS)
                doomed = [
                    await client.ws_connect(url, headers=bearer(expiring.secret))
                    for url in (cdp, cdp.removesuffix("/cdp") + "/live/frames")
                ]
                try:
                    reason = f"API key {expiring.api_key.id} expired"
                    ends = await ends_of(doomed, within=KEY_TTL_SECONDS + 15)
                    assert ends == [(1008, reason)] * 2
                    await assert_drives(other)
                finally:
                    await other.close()
            assert sessions.get(session["id"])["state"] == "SESSION_STATE_ACTIVE"
        finally:
            sessions.close(session["id"])


async def test_a_rotated_keys_old_secret_sockets_end_with_its_grace_and_new_ones_stay(
    farm: LocalFarm, admin: Client, make_key: KeyFactory
) -> None:
    tenant = f"rotating-{secrets.token_hex(4)}"
    owner, rotated = make_key("sessions", tenant=tenant), make_key("sessions", tenant=tenant)
    key_id = rotated.api_key.id
    with http_client(farm, owner.secret) as http:
        sessions = Sessions(http)
        session = sessions.create()
        cdp = session["cdpUrl"]
        try:
            async with aiohttp.ClientSession() as client:
                # Opened before the rotation: a notice tells the agent of the grace end.
                before = await client.ws_connect(cdp, headers=bearer(rotated.secret))
                answer = admin.http.post(
                    f"/v1/apiKeys/{key_id}:rotate", json={"graceSeconds": GRACE_SECONDS}
                )
                assert answer.status_code == 200, answer.text
                new_secret = answer.json()["secret"]
                # Opened with the old secret within its grace: its identity says when it ends.
                during = await client.ws_connect(cdp, headers=bearer(rotated.secret))
                kept = await client.ws_connect(cdp, headers=bearer(new_secret))
                try:
                    reason = (
                        f"API key {key_id} rotated: the secret this was opened with no longer works"
                    )
                    ends = await ends_of([before, during], within=GRACE_SECONDS + 15)
                    assert ends == [(1008, reason)] * 2
                    await assert_drives(kept)
                finally:
                    await kept.close()
        finally:
            sessions.close(session["id"])


@pytest.fixture
def held_task(
    channel: grpc.Channel, site: Site
) -> Iterator[tuple[tasks_pb2_grpc.TaskServiceStub, str]]:
    """A page address that loads only once the test is over (its gate opened at the end)."""
    gate = f"key-ends-{secrets.token_hex(4)}"
    try:
        yield tasks_pb2_grpc.TaskServiceStub(channel), site.url(f"/gate/{gate}")
    finally:
        site.release(gate)


def watch_until_refused(
    stub: tasks_pb2_grpc.TaskServiceStub, url: str, secret: str, end_key: Callable[[], None]
) -> grpc.RpcError:
    """Watches a new task at `url` with key `secret`, calls `end_key()`; the stream's error."""
    metadata = (("authorization", f"Bearer {secret}"),)
    spec = tasks_pb2.TaskSpec(url=url, content=tasks_pb2.ContentOptions())
    task = stub.CreateTask(tasks_pb2.CreateTaskRequest(spec=spec), metadata=metadata, timeout=10)
    # The page's gate stays shut for longer than this: the task cannot end first.
    stream = stub.WatchTask(tasks_pb2.WatchTaskRequest(id=task.id), metadata=metadata, timeout=20)
    assert next(stream).task.id == task.id
    end_key()
    with pytest.raises(grpc.RpcError) as caught:
        for event in stream:
            assert event.task.id == task.id
    return caught.value


def run_until_refused(
    stub: tasks_pb2_grpc.TaskServiceStub, url: str, secret: str, end_key: Callable[[], None]
) -> grpc.RpcError:
    """Runs a task at `url` with key `secret`, calls `end_key()` once it is queued; the error."""
    metadata = (("authorization", f"Bearer {secret}"),)
    run = f"key-ends-{secrets.token_hex(4)}"
    spec = tasks_pb2.TaskSpec(url=url, content=tasks_pb2.ContentOptions(), labels={"run": run})
    # The page's gate stays shut for longer than this: the task cannot end first.
    waiting = stub.RunTask.future(
        tasks_pb2.RunTaskRequest(spec=spec), metadata=metadata, timeout=20
    )
    listing = tasks_pb2.ListTasksRequest(label=[f"run={run}"])
    eventually(
        lambda: stub.ListTasks(listing, metadata=metadata, timeout=10).tasks,
        message="RunTask queued no task",
    )
    end_key()
    with pytest.raises(grpc.RpcError) as caught:
        waiting.result()
    return caught.value


UntilRefused = Callable[
    [tasks_pb2_grpc.TaskServiceStub, str, str, Callable[[], None]], grpc.RpcError
]
"""Opens a WatchTask stream or a RunTask wait with a key, ends the key; the call's error."""

WAITS = pytest.mark.parametrize(
    "until_refused", [watch_until_refused, run_until_refused], ids=["watch_task", "run_task"]
)


@WAITS
def test_revoking_a_key_ends_its_waits(
    held_task: tuple[tasks_pb2_grpc.TaskServiceStub, str],
    admin: Client,
    make_key: KeyFactory,
    until_refused: UntilRefused,
) -> None:
    stub, url = held_task
    waiter = make_key("tasks.read", "tasks.write")
    key_id = waiter.api_key.id

    def revoke() -> None:
        admin.http.delete(f"/v1/apiKeys/{key_id}").raise_for_status()

    refused = until_refused(stub, url, waiter.secret, revoke)
    assert (refused.code(), refused.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        f"API key {key_id} revoked",
    )


@WAITS
def test_a_key_that_expires_ends_its_waits(
    held_task: tuple[tasks_pb2_grpc.TaskServiceStub, str],
    make_key: KeyFactory,
    until_refused: UntilRefused,
) -> None:
    stub, url = held_task
    waiter = make_key("tasks.read", "tasks.write", ttl_seconds=KEY_TTL_SECONDS)

    refused = until_refused(stub, url, waiter.secret, lambda: None)
    assert (refused.code(), refused.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        f"API key {waiter.api_key.id} expired",
    )
