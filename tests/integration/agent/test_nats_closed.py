"""An agent whose NATS connection the server closes for good exits non-zero, to be restarted."""

import asyncio
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.js.errors import KeyNotFoundError

from farm_cli.launcher import infra
from farm_cli.launcher.processes import ManagedProcess, free_ports, wait_until
from farm_core.queue import agents_bucket
from tests.conftest import NatsServer
from tests.helpers import assert_eventually
from tests.integration.agent.agent_processes import AgentProcesses

pytestmark = pytest.mark.integration

EXIT_WITHIN_SECONDS = 30


def nats_config(max_payload: str) -> str:
    """The config file; a reload takes the server name from it, not from the command line."""
    return f"server_name: farm-local\nmax_payload: {max_payload}\n"


@pytest.fixture
def reloadable_nats(tmp_path: Path) -> Iterator[tuple[NatsServer, Path]]:
    """A nats-server of the test's own with a config file, so a SIGHUP reloads it."""
    config = tmp_path / "nats.conf"
    config.write_text(nats_config("1MB"))
    ports = infra.NatsPorts(*free_ports(2))
    process = ManagedProcess(infra.nats_spec(ports, tmp_path / "data", config), tmp_path, tmp_path)
    process.start()
    try:
        wait_until(lambda: infra.nats_ready(ports), timeout=30, what="nats-server", process=process)
        yield NatsServer(url=f"nats://127.0.0.1:{ports.client}", process=process), config
    finally:
        process.stop(timeout=5)


async def test_agent_whose_connection_the_server_closed_exits_non_zero_for_a_restart(
    reloadable_nats: tuple[NatsServer, Path], tmp_path: Path
) -> None:
    server, config = reloadable_nats
    agent_id = f"closed-{uuid.uuid4().hex[:6]}"
    agents = AgentProcesses(server.url)
    nc = await nats.connect(server.url)
    try:
        process = await agents.start(tmp_path / "home", agent_id)
        bucket = await agents_bucket(nc.jetstream())

        async def beats() -> bool:
            try:
                return bool(await bucket.get(agent_id))
            except KeyNotFoundError:
                return False

        await assert_eventually(beats, within=60, message="the agent never sent a heartbeat")
        # The trial's violation: the agent's next heartbeat is over the reloaded
        # limit, and nats-server answers -ERR 'Maximum Payload Violation' and closes
        # the agent's own connection, which nats-py then never reconnects.
        config.write_text(nats_config("32"))
        server.process.send_signal(signal.SIGHUP)
        returncode = await asyncio.wait_for(process.wait(), EXIT_WITHIN_SECONDS)
        assert returncode != 0
        log = (tmp_path / "home" / f"{agent_id}.log").read_text()
        assert "maximum payload violation" in log
        assert "stops so that its supervisor starts it again" in log
    finally:
        await agents.stop_all()
        await nc.close()
