"""LocalFarm with the real infrastructure: NATS, SeaweedFS and Envoy (services skipped).

Tests of a start or a stop start their own farm; those that only need one running
(a refused second launcher, a killed or stopped process that comes back) share one.
"""

import io
import os
import signal
import socket
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import httpx
import nats
import pytest
from minio import Minio

from farm_cli.launcher import infra
from farm_cli.launcher.config import FarmConfig
from farm_cli.launcher.farm import LocalFarm
from farm_cli.launcher.lock import FarmAlreadyRunning, FarmLock
from farm_cli.launcher.processes import StartupError, port_open
from farm_core.nats_access import NatsAccess
from tests.helpers import assert_eventually
from tests.integration.cli.conftest import infra_only, pid_files, running

pytestmark = [pytest.mark.integration, pytest.mark.slow]

INFRASTRUCTURE = ["nats", "seaweedfs", "envoy"]


@dataclass
class Reports:
    """What a farm reports, line by line; `since()` gives the lines after a mark."""

    lines: list[str] = field(default_factory=list)

    def mark(self) -> int:
        return len(self.lines)

    def since(self, mark: int) -> list[str]:
        return self.lines[mark:]


@dataclass(frozen=True)
class SharedFarm:
    """The module's running, supervised farm and what it has reported."""

    farm: LocalFarm
    reports: Reports


@pytest.fixture(scope="module")
def shared_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedFarm]:
    """One infrastructure farm for this module, supervised; each test leaves it whole."""
    reports = Reports()
    home = tmp_path_factory.mktemp("shared") / "farm-home"
    with LocalFarm(infra_only(home), report=reports.lines.append) as farm:
        farm.start_supervisor(interval=0.1)
        yield SharedFarm(farm, reports)


def test_infrastructure_comes_up_and_stops_without_a_trace(infra_config: FarmConfig) -> None:
    progress: list[str] = []
    farm = LocalFarm(infra_config, report=progress.append)
    farm.start()
    try:
        assert list(farm.processes) == INFRASTRUCTURE
        recorded = pid_files(infra_config.home)
        assert recorded == {name: farm.process(name).pid for name in INFRASTRUCTURE}
        assert all(running(pid) for pid in recorded.values())
        # Each is reported once, as soon as it is ready: Envoy well before SeaweedFS.
        assert sorted(line.split()[:2] for line in progress) == [
            [n, "ready"] for n in sorted(INFRASTRUCTURE)
        ]
        assert infra.nats_ready(infra_config.ports.nats_ports())
        assert infra.s3_ready(farm.s3.endpoint, farm.s3.credentials, "farm-artifacts")
        # No service runs, so Envoy is up but reports the farm unhealthy.
        assert httpx.get(f"{farm.envoy_url}/healthz", timeout=5).status_code == 503
        assert stat.S_IMODE((infra_config.home / "admin-key").stat().st_mode) == 0o600
        assert (infra_config.home / "envoy" / "envoy.yaml").is_file()
        assert all((infra_config.home / "logs" / f"{n}.log").is_file() for n in INFRASTRUCTURE)
    finally:
        farm.stop()
    assert pid_files(infra_config.home) == {}
    assert not any(running(pid) for pid in recorded.values())
    assert not port_open("127.0.0.1", infra_config.ports.envoy)
    lock = FarmLock(infra_config.home / "run")
    lock.acquire()
    lock.release()


def test_keys_and_stored_objects_survive_a_restart(infra_config: FarmConfig) -> None:
    # SeaweedFS stopped as the launcher stops it by default.
    infra_config = replace(infra_config, seaweedfs_stop_timeout=FarmConfig.seaweedfs_stop_timeout)
    with LocalFarm(infra_config) as farm:
        first_key, first_s3 = farm.admin_key, farm.s3
        client = infra.s3_client(farm.s3.endpoint, farm.s3.credentials)
        client.put_object("farm-artifacts", "t/kept", io.BytesIO(b"kept"), 4)
    with LocalFarm(infra_config) as farm:
        assert farm.admin_key == first_key
        assert (infra_config.home / "admin-key").read_text().strip() == first_key
        assert farm.s3.credentials == first_s3.credentials
        client = infra.s3_client(farm.s3.endpoint, farm.s3.credentials)
        assert object_bytes(client, "t/kept") == b"kept"


# async, as the other users of shared_farm: pytest-asyncio runs the session loop's
# tests apart from the others, and a sync user would start the farm a second time.
async def test_a_second_launcher_on_the_same_home_refuses_and_touches_nothing(
    shared_farm: SharedFarm,
) -> None:
    first = shared_farm.farm
    before = pid_files(first.home)
    with pytest.raises(FarmAlreadyRunning, match=f"launcher PID {os.getpid()}"):
        LocalFarm(first.config).start()
    assert pid_files(first.home) == before
    assert all(process.alive() for process in first.processes.values())


def test_a_failed_start_stops_what_it_started_and_shows_the_log(
    infra_config: FarmConfig,
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", infra_config.ports.envoy))
        squatter.listen()
        farm = LocalFarm(infra_config)
        with pytest.raises(StartupError) as failure:
            farm.start()
    assert "envoy" in str(failure.value)
    assert "address already in use" in str(failure.value).lower()
    assert pid_files(infra_config.home) == {}
    assert not any(process.alive() for process in farm.processes.values())
    assert not port_open("127.0.0.1", infra_config.ports.nats)


async def test_killed_nats_is_restarted_on_its_port_with_its_stream(
    shared_farm: SharedFarm,
) -> None:
    farm, reports = shared_farm.farm, shared_farm.reports
    await publish_to_a_stream(farm.nats_access("scheduler"), "KILLED", b"kept")
    first_pid = farm.process("nats").pid
    mark = reports.mark()
    farm.kill("nats", signal.SIGKILL)
    await assert_eventually(
        lambda: any("nats back up" in r for r in reports.since(mark)), within=30
    )
    assert farm.process("nats").pid != first_pid
    assert pid_files(farm.home)["nats"] == farm.process("nats").pid
    assert await first_message_of_the_stream(farm.nats_access("scheduler"), "KILLED") == b"kept"
    died = next(line for line in reports.since(mark) if line.startswith("nats died"))
    assert died.startswith(
        f"nats died (SIGKILL); restarting in 1 s; last lines of {farm.log_dir / 'nats.log'}"
    )


async def test_stopped_seaweedfs_and_nats_start_again_with_their_data(
    shared_farm: SharedFarm,
) -> None:
    farm = shared_farm.farm
    client = infra.s3_client(farm.s3.endpoint, farm.s3.credentials)
    client.put_object("farm-artifacts", "t/kept", io.BytesIO(b"kept"), 4)
    await publish_to_a_stream(farm.nats_access("scheduler"), "STOPPED", b"queued")

    farm.stop_process("seaweedfs")
    farm.stop_process("nats")
    assert not infra.s3_ready(farm.s3.endpoint, farm.s3.credentials, "farm-artifacts")
    assert not port_open("127.0.0.1", farm.config.ports.nats)
    assert set(pid_files(farm.home)) == {"envoy"}

    farm.start_process("nats")
    farm.start_process("seaweedfs")
    assert await first_message_of_the_stream(farm.nats_access("scheduler"), "STOPPED") == b"queued"
    assert object_bytes(client, "t/kept") == b"kept"
    assert set(pid_files(farm.home)) == set(INFRASTRUCTURE)


async def publish_to_a_stream(access: NatsAccess, stream: str, data: bytes) -> None:
    """Makes the file-stored stream `stream` and publishes `data` as its first message."""
    connection = await nats.connect(**access.connect_options())
    try:
        js = connection.jetstream()
        await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
        await js.publish(f"{stream.lower()}.one", data)
    finally:
        await connection.close()


async def first_message_of_the_stream(access: NatsAccess, stream: str) -> bytes:
    connection = await nats.connect(**access.connect_options())
    try:
        message = await connection.jetstream().get_msg(stream, seq=1)
        return bytes(message.data or b"")
    finally:
        await connection.close()


def object_bytes(client: Minio, key: str) -> bytes:
    """The bytes of object `key` in the farm's bucket."""
    stored = client.get_object("farm-artifacts", key)
    try:
        return stored.read()
    finally:
        stored.close()
        stored.release_conn()
