"""Many hosts on one machine: one machine of the farm fails, and no accepted task is lost.

The farm (tests/netns_farm.py) spreads over network-namespace hosts on a private
bridge: a NATS cluster of three, two auth, two scheduler and two storage replicas
behind Envoy, PostgreSQL, SeaweedFS, and three agent hosts that route only to NATS
and storage. Each test submits a batch of slow screenshot tasks through the Python
SDK (which retries what the farm answers UNAVAILABLE, with an idempotency key), breaks
one machine while they run, heals it, and counts: every task submitted ends
SUCCEEDED or FAILED, each is listed once, and no task has two screenshots.
"""

import asyncio
import secrets
import socket
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from browserfarm import AsyncClient, TaskStatus
from tests.farms import QUICK_RECOVERY_ENV, whole_farm_config
from tests.helpers import assert_eventually
from tests.netns import BRIDGE_ADDRESS, Hosts, NamespacesUnavailable
from tests.netns_farm import (
    AGENT_HOSTS,
    API_HOSTS,
    POSTGRES_BIN,
    POSTGRES_PORT,
    SCHEDULER_PORT,
    NetnsFarm,
    layout,
)
from tests.pages import Site, serve_site

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.multihost]

BATCH = 12
SLOW_PAGE = "/slow?ms=1500"
# Long enough that a task seen running on the host about to be cut is still on its page
# when the cut comes, not already reporting its end.
CUT_PAGE = "/slow?ms=6000"
NETNS_ENV = {
    **QUICK_RECOVERY_ENV,
    "FARM_NATS_REPLICAS": "3",
    "FARM_AGENT_ACK_WAIT_SECONDS": "4",
    "FARM_AGENT_CONCURRENCY": "2",
}


@pytest.fixture(scope="module")
def netns_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsFarm]:
    """The module's farm on its own hosts; processes, namespaces and bridge go afterwards."""
    if not POSTGRES_BIN:
        pytest.skip("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
    hosts = Hosts()
    try:
        layout(hosts)
    except NamespacesUnavailable as reason:
        hosts.remove()
        pytest.skip(f"network namespaces are not available here: {reason}")
    config = replace(
        whole_farm_config(tmp_path_factory.mktemp("netns"), agents=len(AGENT_HOSTS)),
        agent_allow=f"{BRIDGE_ADDRESS}/32",
        service_env=NETNS_ENV,
    )
    farm = NetnsFarm(hosts, config)
    try:
        farm.start()
        yield farm
    finally:
        farm.stop()
        hosts.remove()


@pytest.fixture(scope="module")
def site(netns_farm: NetnsFarm) -> Iterator[Site]:
    """The test pages, on the bridge's own address: every agent host routes to it."""
    with serve_site(BRIDGE_ADDRESS) as served:
        yield served


class Batch:
    """One test's tasks: submitted through the SDK, listed through Envoy by their label."""

    def __init__(self, farm: NetnsFarm, client: AsyncClient, http: httpx.AsyncClient) -> None:
        self.farm = farm
        self.client = client
        self.http = http
        self.label = secrets.token_hex(6)
        self.ids: list[str] = []

    async def submit(self, count: int, url: str) -> None:
        """Creates `count` screenshot tasks of `url`; an error here fails the test."""
        spec = {"url": url, "screenshot": {}, "cacheTtlSeconds": 0,
                "labels": {"netns": self.label}}  # fmt: skip
        tasks = await asyncio.gather(*(self.client.submit(spec) for _ in range(count)))
        self.ids += [task.id for task in tasks]

    async def running_on(self, agent_id: str = "") -> list[str]:
        """Ids of the batch's tasks running on `agent_id` (on any agent if not given)."""
        tasks = [await self.client.get(task_id) for task_id in self.ids]
        return [
            t.id for t in tasks if t.status == TaskStatus.RUNNING and agent_id in ("", t.agent_id)
        ]

    async def finished(self, within: float) -> dict[str, Any]:
        """Every task once all are final (read through the SDK, which retries)."""
        tasks: dict[str, Any] = {}

        async def all_final() -> bool:
            for task_id in self.ids:
                tasks[task_id] = await self.client.get(task_id)
            return all(task.status.final for task in tasks.values())

        def unfinished() -> str:
            return f"not final: {[t.status for t in tasks.values() if not t.status.final]}"

        await assert_eventually(all_final, within=within, interval=1, message=unfinished)
        return tasks

    async def check_counts(self, tasks: dict[str, Any]) -> None:
        """submitted = succeeded + failed; each listed once; one screenshot per success."""
        succeeded = [t for t in tasks.values() if t.status == TaskStatus.SUCCEEDED]
        failed = [t for t in tasks.values() if t.status == TaskStatus.FAILED]
        assert len(self.ids) == len(set(self.ids)) == len(succeeded) + len(failed), tasks
        params = {"label": f"netns={self.label}", "pageSize": "1000"}
        listed = await self.http.get("/v1/tasks", params=params)
        assert listed.status_code == 200, listed.text
        assert sorted(t["id"] for t in listed.json()["tasks"]) == sorted(self.ids)
        for task in succeeded:
            stored = await self.http.get("/v1/artifacts", params={"taskId": task.id})
            assert stored.status_code == 200, stored.text
            artifacts = stored.json().get("artifacts", [])
            assert len(artifacts) == 1, (task, artifacts)
        # Most of a batch survives any one fault; a failure names its error.
        assert len(succeeded) >= len(self.ids) // 2, [t.error for t in failed]


@pytest.fixture
async def batch(netns_farm: NetnsFarm) -> AsyncIterator[Batch]:
    """An SDK client and an HTTP client of the farm's Envoy with the admin key."""
    address = netns_farm.envoy_url
    headers = {"authorization": f"Bearer {netns_farm.admin_key}"}
    async with (
        AsyncClient(address, netns_farm.admin_key, max_attempts=8) as client,
        httpx.AsyncClient(base_url=address, headers=headers, timeout=30) as http,
    ):
        yield Batch(netns_farm, client, http)


async def through(
    batch: Batch, site: Site, fault: Callable[[], None], heal: Callable[[], None]
) -> dict[str, Any]:
    """Submits a batch, waits until it runs, runs `fault`, finishes the batch, runs `heal`."""
    await batch.submit(BATCH, site.url(SLOW_PAGE))
    await assert_eventually(batch.running_on, within=60, message="no task of the batch started")
    await asyncio.to_thread(fault)
    try:
        tasks = await batch.finished(within=90)
    finally:
        await asyncio.to_thread(heal)
    await batch.check_counts(tasks)
    return tasks


def test_agent_hosts_know_and_reach_only_nats_and_storage(netns_farm: NetnsFarm) -> None:
    forbidden = [netns_farm.hosts[name].address for name in (*API_HOSTS, "db", "edge")]
    for agent, env in netns_farm.agent_env.items():
        assert not any(addr in value for value in env.values() for addr in forbidden), agent
    scheduler = netns_farm.hosts[API_HOSTS[0]].address
    probe = (
        "import socket,sys\n"
        f"try: socket.create_connection(('{scheduler}', {SCHEDULER_PORT}), timeout=2)\n"
        "except OSError as e: sys.exit(0)\n"
        "sys.exit(1)\n"
    )
    agent_host = netns_farm.hosts[AGENT_HOSTS[0]]
    result = subprocess.run(agent_host.run(["python3", "-c", probe]), timeout=10, check=False)
    assert result.returncode == 0, "an agent host reached the scheduler"
    database = netns_farm.hosts["db"].address
    with socket.create_connection((database, POSTGRES_PORT), timeout=2):
        pass  # the database is there, only not for agents


async def test_cut_agent_host_tasks_finish_elsewhere(batch: Batch, site: Site) -> None:
    farm = batch.farm
    await batch.submit(BATCH, site.url(CUT_PAGE))
    await assert_eventually(
        lambda: batch.running_on("agent-1"), within=60, message="agent-1 took no task"
    )
    held = await batch.running_on("agent-1")
    farm.hosts.cut("agent-1")
    try:
        tasks = await batch.finished(within=120)
    finally:
        farm.hosts.join("agent-1")
    await batch.check_counts(tasks)
    for task_id in held:
        assert tasks[task_id].agent_id != "agent-1", tasks[task_id]


async def test_killed_nats_node_cluster_keeps_serving(batch: Batch, site: Site) -> None:
    farm = batch.farm
    await through(batch, site, lambda: farm.kill("nats-1"), lambda: farm.restart("nats-1"))


async def test_killed_scheduler_and_storage_replicas_clients_see_no_error(
    batch: Batch, site: Site
) -> None:
    farm = batch.farm

    def fault() -> None:
        farm.kill("scheduler-1")
        farm.kill("storage-2")

    def heal() -> None:
        farm.restart("scheduler-1")
        farm.restart("storage-2")

    await through(batch, site, fault, heal)


async def test_postgres_restart_loses_nothing(batch: Batch, site: Site) -> None:
    farm = batch.farm

    def fault() -> None:
        farm.stop_postgres()
        farm.restart("postgres")

    await through(batch, site, fault, lambda: None)
