"""A real agent process when nats-server ends its connection: a kick, or an `-ERR` that closes it.

nats-py reconnects after a kick (the socket just ends) but never after a server
`-ERR`: then the agent must exit non-zero, for its supervisor to restart it.
"""

import asyncio
import json
import uuid
from datetime import datetime
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError

from farm.tasks.v1 import tasks_pb2
from farm_core.queue import TASK_EVENT_SUBJECTS, ensure_streams
from farm_core.shared_buckets import agents_bucket
from tests.helpers import assert_eventually
from tests.integration.agent.agent_processes import AgentProcesses
from tests.integration.agent.conftest import SUCCEEDED, Events, publish
from tests.integration.configured_nats import FARM_USER, SYSTEM_USER, ConfiguredNats
from tests.pages import Site

pytestmark = pytest.mark.integration

EXIT_WITHIN_SECONDS = 30
CLOSED_GRACE_SECONDS = 2


async def start_agent(
    server: ConfiguredNats, nc: Client, home: Path, **variables: str
) -> tuple[str, asyncio.subprocess.Process, AgentProcesses]:
    """A real agent process on `server` (with environment `variables`), once it beats.

    The streams are made first, as the scheduler makes them: an agent only waits for them.
    """
    await ensure_streams(nc.jetstream())
    agent_id = f"conn-{uuid.uuid4().hex[:6]}"
    agents = AgentProcesses(server.url)
    process = await agents.start(
        home, agent_id, NATS_USER=FARM_USER[0], NATS_PASSWORD=FARM_USER[1], **variables
    )
    bucket = await agents_bucket(nc.jetstream())

    async def beats() -> bool:
        try:
            return bool(await bucket.get(agent_id))
        except KeyNotFoundError:
            return False

    try:
        await assert_eventually(beats, within=60, message="the agent never sent a heartbeat")
    except BaseException:
        await agents.stop_all()
        raise
    return agent_id, process, agents


async def test_agent_whose_connection_the_server_closed_exits_non_zero_for_a_restart(
    configured_nats: ConfiguredNats, tmp_path: Path
) -> None:
    nc = await nats.connect(configured_nats.url_of())
    # The drain before the exit takes its grace at most; a short one is enough.
    variables = {"FARM_GRACE_SECONDS": str(CLOSED_GRACE_SECONDS)}
    agent_id, process, agents = await start_agent(
        configured_nats, nc, tmp_path / "home", **variables
    )
    try:
        # The trial's violation: the agent's next heartbeat is over the reloaded
        # limit, and nats-server answers -ERR 'Maximum Payload Violation' and closes
        # the agent's own connection, which nats-py then never reconnects.
        configured_nats.reload(max_payload="32")
        returncode = await asyncio.wait_for(process.wait(), EXIT_WITHIN_SECONDS)
        assert returncode != 0
        log = (tmp_path / "home" / f"{agent_id}.log").read_text()
        assert "maximum payload violation" in log
        assert "stops so that its supervisor starts it again" in log
    finally:
        await agents.stop_all()
        await nc.close()


# Far beyond the grace: a stop that waited on a NATS request or a fetch would take this long.
SLOW_NATS_SECONDS = 30


def log_times(log: str, *messages: str) -> list[datetime]:
    """When the agent's JSON log first says each of `messages`."""
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [
        datetime.fromisoformat(next(line["time"] for line in lines if text in line["message"]))
        for text in messages
    ]


async def test_agent_whose_connection_the_server_closed_stops_within_its_grace(
    configured_nats: ConfiguredNats, tmp_path: Path
) -> None:
    nc = await nats.connect(configured_nats.url_of())
    variables = {
        "FARM_GRACE_SECONDS": str(CLOSED_GRACE_SECONDS),
        "FARM_NATS_REQUEST_TIMEOUT_SECONDS": str(SLOW_NATS_SECONDS),
        "FARM_AGENT_FETCH_WAIT_SECONDS": str(SLOW_NATS_SECONDS),
    }
    agent_id, process, agents = await start_agent(
        configured_nats, nc, tmp_path / "home", **variables
    )
    try:
        # The heartbeat that meets the violation never gets its answer: the drain must
        # not wait for it (30 s), nor for a fetch retried on the dead connection.
        configured_nats.reload(max_payload="32")
        assert await asyncio.wait_for(process.wait(), SLOW_NATS_SECONDS * 2) != 0
        log = (tmp_path / "home" / f"{agent_id}.log").read_text()
        stopping, stopped = log_times(log, "draining for up to 2 s", "agent stopped")
        assert (stopped - stopping).total_seconds() < SLOW_NATS_SECONDS, log
    finally:
        await agents.stop_all()
        await nc.close()


async def kick_connections_of(system: Client, name_part: str) -> int:
    """Has nats-server kick every connection whose name holds `name_part`; how many."""
    reply = await system.request("$SYS.REQ.SERVER.PING.CONNZ", b'{"acc": "FARM"}', timeout=5)
    answer = json.loads(reply.data)
    server_id = answer["server"]["id"]
    kicked = 0
    for connection in answer["data"]["connections"]:
        if name_part in connection.get("name", ""):
            request = json.dumps({"cid": connection["cid"]}).encode()
            await system.request(f"$SYS.REQ.SERVER.{server_id}.KICK", request, timeout=5)
            kicked += 1
    return kicked


async def test_kicked_agent_reconnects_and_runs_a_task(
    configured_nats: ConfiguredNats, tmp_path: Path, site: Site
) -> None:
    nc = await nats.connect(configured_nats.url_of())
    system = await nats.connect(configured_nats.url_of(SYSTEM_USER))
    events = Events()
    await nc.subscribe(TASK_EVENT_SUBJECTS, cb=events.on_message)
    agent_id, process, agents = await start_agent(configured_nats, nc, tmp_path / "home")
    try:
        assert await kick_connections_of(system, agent_id) > 0
        js = nc.jetstream()
        await ensure_streams(js)
        spec = tasks_pb2.TaskSpec(
            url=site.url("/page"), extract=tasks_pb2.ExtractOptions(fields={"body": "body"})
        )
        task_id = await publish(js, spec)
        assert (await events.final(task_id, within=60)).status == SUCCEEDED
        assert process.returncode is None
        log = (tmp_path / "home" / f"{agent_id}.log").read_text()
        assert "NATS reconnected" in log
    finally:
        await agents.stop_all()
        await system.close()
        await nc.close()
