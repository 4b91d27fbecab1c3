"""compose's and Kubernetes' NATS users (deploy/nats/users.conf) on a real nats-server.

The checked-in file loads with its passwords from the environment; an agent replica
logged in as the shared user `agent` hears its own orders, not a task publisher's.
"""

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from farm_cli.launcher import infra
from farm_cli.launcher.config import find_project_root
from farm_cli.launcher.nats_users import SHARED_AGENT_USER, deployment_users, password_variable
from farm_cli.launcher.processes import ManagedProcess, free_ports, wait_until
from farm_core.nats_access import NatsAccess
from farm_core.queue import Priority, connect, drain_subject, ensure_streams, task_subject
from tests.integration.cli.nats_denials import Denials

pytestmark = pytest.mark.integration

USERS_CONF = find_project_root(Path(__file__).parent).joinpath("deploy", "nats", "users.conf")
PASSWORDS = {user.name: f"nats_{user.name.replace('-', '_')}_pw" for user in deployment_users(0)}


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state = tmp_path_factory.mktemp("nats-deployment")
    ports = infra.NatsPorts(*free_ports(2))
    spec = infra.nats_spec(ports, state / "data", USERS_CONF)
    env = {password_variable(user): password for user, password in PASSWORDS.items()}
    process = ManagedProcess(replace(spec, env={**spec.env, **env}), state, state)
    process.start()
    try:
        wait_until(lambda: infra.nats_ready(ports), timeout=30, what="nats-server", process=process)
        yield f"nats://127.0.0.1:{ports.client}"
    finally:
        process.stop(timeout=5)


def access(url: str, user: str) -> NatsAccess:
    return NatsAccess(url, user, PASSWORDS[user])


@pytest.fixture
async def scheduler(nats_url: str) -> AsyncIterator[Client]:
    client = await connect(access(nats_url, "scheduler"), "test-scheduler")
    await ensure_streams(client.jetstream())
    yield client
    await client.close()


async def test_a_shared_agent_user_hears_its_drain_but_cannot_publish_a_task(
    nats_url: str, scheduler: Client
) -> None:
    denials = Denials()
    agent = await nats.connect(
        **access(nats_url, SHARED_AGENT_USER).connect_options(), error_cb=denials.on_error
    )
    try:
        drain = await agent.subscribe(drain_subject("agent-7d9f-x2k4p-1"))
        await agent.flush()
        await scheduler.publish(drain_subject("agent-7d9f-x2k4p-1"), b"drain")
        # Flushed: the notice has reached the server (it waited in the client's buffer
        # past the wait below once, on a loaded machine).
        await scheduler.flush()
        assert (await drain.next_msg(timeout=10)).data == b"drain"
        await agent.publish(task_subject("", Priority.HIGH), b"forged task")
        await agent.flush()
        await denials.wait_for(task_subject("", Priority.HIGH))
        await agent.subscribe("_INBOX.scheduler.>")
        await denials.wait_for("_INBOX.scheduler.>")
    finally:
        await agent.close()
