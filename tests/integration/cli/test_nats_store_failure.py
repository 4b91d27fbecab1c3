"""A nats-server whose JetStream store failed a write is restarted by the supervisor.

nats-server (2.15) refuses every write to a stream whose store failed one (a full
disk; here a file size limit, RLIMIT_FSIZE, set on the running server and lifted
again), even once the cause is gone, until it is restarted: a publish to the
stream just times out. The launcher's supervisor asks its /healthz and restarts it.
"""

import resource
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.js.api import StreamConfig

from farm_cli.launcher import infra
from farm_cli.launcher.processes import ManagedProcess, free_ports, wait_until
from farm_cli.launcher.supervisor import Phase, RestartPolicy, Role, Supervisor
from tests.helpers import assert_eventually

pytestmark = pytest.mark.integration

STREAM = "FARM_TASKS"
# Over the file size limit below: its block write fails with EFBIG ("file too large").
BIG = b"x" * 100_000
SMALL_FILE_LIMIT = 20_000


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[tuple[ManagedProcess, infra.NatsPorts, Path]]:
    """A nats-server with JetStream, its store under tmp_path, stopped after."""
    ports = infra.NatsPorts(*free_ports(2))
    store = tmp_path / "nats"
    process = ManagedProcess(infra.nats_spec(ports, store), tmp_path, tmp_path)
    process.start()
    try:
        wait_until(lambda: infra.nats_ready(ports), timeout=15, what="nats-server", process=process)
        yield process, ports, store
    finally:
        process.stop(timeout=5)


async def test_a_stream_that_failed_a_write_takes_writes_again_after_the_supervisor_restarts_nats(
    nats_server: tuple[ManagedProcess, infra.NatsPorts, Path],
) -> None:
    process, ports, store = nats_server
    ready, wedged = infra.nats_probes(ports, store)
    reports: list[str] = []
    supervisor = Supervisor(
        RestartPolicy(first_delay=0.2, wedged_interval=0.2, ready_timeout=15), reports.append
    )
    supervisor.watch(process, ready, Role.INFRASTRUCTURE, wedged=wedged)
    client = await nats.connect(f"nats://127.0.0.1:{ports.client}", max_reconnect_attempts=-1)
    try:
        stream = client.jetstream()
        await stream.add_stream(StreamConfig(name=STREAM, subjects=["tasks.>"]))
        await stream.publish("tasks.any.normal", b"before", timeout=5)
        assert wedged() is None
        first_pid = process.pid

        resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (SMALL_FILE_LIMIT, -1))
        with pytest.raises(nats.errors.TimeoutError):
            await stream.publish("tasks.any.normal", BIG, timeout=2)
        resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (-1, -1))
        # The cause is gone, yet the stream still takes nothing.
        with pytest.raises(nats.errors.TimeoutError):
            await stream.publish("tasks.any.normal", b"after", timeout=2)
        reason = wedged()
        assert reason is not None and f"stream '$G > {STREAM}' write error: " in reason, reason

        def restarted_and_up() -> bool:
            supervisor.check()
            return supervisor.restarts(process.name) == 1 and (
                supervisor.phase(process.name) is Phase.UP
            )

        await assert_eventually(restarted_and_up, within=15, interval=0.1)
        assert process.pid != first_pid
        assert reports[0] == f"nats is wedged ({reason}); stopping it to restart it", reports
        assert reports[1].startswith("nats stopped for its restart ("), reports
        ack = await stream.publish("tasks.any.normal", b"after", timeout=5)
        assert (ack.stream, ack.seq) == (STREAM, 2)
        assert wedged() is None
    finally:
        await client.close()
