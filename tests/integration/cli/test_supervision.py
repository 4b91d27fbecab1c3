"""The launcher restarts what crashes, leaves alone what stopped on purpose, and says so.

The services are stand-ins (conftest.stand_ins) in front of the session's real NATS
and SeaweedFS, so a farm starts in a few seconds; the processes are real and so are
the signals.
"""

import json
import os
import signal
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from farm_cli.launcher.config import FarmConfig
from farm_cli.launcher.farm import LocalFarm
from farm_cli.launcher.health import grpc_serving
from farm_cli.launcher.pid_files import not_running
from farm_cli.launcher.supervisor import Phase, RestartPolicy
from farm_cli.main import main
from tests.conftest import NatsServer, S3Server
from tests.helpers import assert_eventually
from tests.integration.cli.conftest import running

pytestmark = [pytest.mark.integration, pytest.mark.slow]

QUICK = RestartPolicy(first_delay=0.5, max_delay=2, stable_after=60)


def starts(record: Path, name: str) -> list[int]:
    path = record / f"{name}.starts"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def farm_settings(record: Path, name: str) -> dict[str, str]:
    """The farm's variables `name` was last started with."""
    env: dict[str, str] = json.loads((record / f"{name}.env.json").read_text())
    return {key: value for key, value in env.items() if key.startswith(("FARM_", "NATS_"))}


def pid_file(farm: LocalFarm, name: str) -> int | None:
    path = farm.run_dir / f"{name}.pid"
    return int(path.read_text()) if path.exists() else None


@pytest.fixture
def services_config(
    infra_config: FarmConfig, nats_server: NatsServer, seaweedfs: S3Server, stand_ins: Path
) -> FarmConfig:
    """Stand-in services and two agents, the session's NATS and SeaweedFS, and Envoy."""
    return replace(
        infra_config,
        start_services=True,
        agents=2,
        nats_url=nats_server.url,
        s3_endpoint=seaweedfs.endpoint,
        s3_credentials=seaweedfs.credentials,
        s3_bucket=seaweedfs.bucket,
        service_timeout=60,
        restart_policy=QUICK,
    )


class Console(list[str]):
    """What the farm reports, line by line."""

    def has(self, text: str) -> bool:
        return any(text in line for line in self)


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def farm(services_config: FarmConfig, console: Console) -> Iterator[LocalFarm]:
    """The farm, up and supervised in the background."""
    with LocalFarm(services_config, report=console.append) as running_farm:
        running_farm.start_supervisor(interval=0.05)
        yield running_farm


async def test_a_killed_agent_is_restarted_with_doubling_delays_and_a_fresh_pid_file(
    farm: LocalFarm, console: Console, stand_ins: Path
) -> None:
    first_pid = farm.process("agent-2").pid
    farm.kill("agent-2", signal.SIGKILL)
    await assert_eventually(lambda: console.has("agent-2 back up"), within=20)
    assert console.has("agent-2 died (SIGKILL); restarting in 0.5 s")
    second_pid = farm.process("agent-2").pid
    assert second_pid != first_pid
    assert not running(first_pid)
    assert pid_file(farm, "agent-2") == second_pid
    assert starts(stand_ins, "agent-2") == [first_pid, second_pid]
    assert grpc_serving(f"127.0.0.1:{farm.config.ports.agent(2)}")

    # Down again before it counted as healthy: the next wait doubles.
    farm.kill("agent-2", signal.SIGKILL)
    await assert_eventually(lambda: len(starts(stand_ins, "agent-2")) == 3, within=20)
    assert console.has("agent-2 died (SIGKILL); restarting in 1 s")
    await assert_eventually(lambda: farm.phase("agent-2") is Phase.UP, within=20)
    assert farm.supervisor.restarts("agent-2") == 2
    assert starts(stand_ins, "agent-1") == [farm.process("agent-1").pid]


async def test_a_crashed_service_is_restarted_with_the_same_settings(
    farm: LocalFarm, console: Console, stand_ins: Path
) -> None:
    before = farm_settings(stand_ins, "scheduler")
    farm.kill("scheduler", signal.SIGKILL)
    await assert_eventually(lambda: console.has("scheduler back up"), within=20)
    assert farm_settings(stand_ins, "scheduler") == before
    assert pid_file(farm, "scheduler") == farm.process("scheduler").pid


async def test_an_agent_that_exits_zero_after_a_drain_stays_down_until_started(
    farm: LocalFarm, console: Console, stand_ins: Path
) -> None:
    farm.process("agent-1").signal(signal.SIGTERM)
    await assert_eventually(lambda: farm.phase("agent-1") is Phase.ENDED, within=20)
    assert console.has("agent-1 exited after draining (exit code 0); not restarting it")
    assert pid_file(farm, "agent-1") is None
    # A witness instead of a sleep: agent-2, killed after agent-1 ended, is restarted
    # after the same first delay, so once it is back a restart of agent-1 would be too.
    farm.kill("agent-2", signal.SIGKILL)
    await assert_eventually(lambda: console.has("agent-2 back up"), within=20)
    assert len(starts(stand_ins, "agent-1")) == 1
    assert farm.phase("agent-1") is Phase.ENDED

    farm.start_process("agent-1")
    assert farm.phase("agent-1") is Phase.UP
    assert pid_file(farm, "agent-1") == farm.process("agent-1").pid
    assert len(starts(stand_ins, "agent-1")) == 2


async def test_a_service_sent_sigterm_by_hand_comes_back_with_a_new_pid(
    farm: LocalFarm, console: Console, stand_ins: Path
) -> None:
    first_pid = farm.process("storage").pid
    # Someone else's SIGTERM, by PID: the stand-in exits 0, as a service does.
    os.kill(first_pid, signal.SIGTERM)
    await assert_eventually(lambda: console.has("storage back up"), within=20)
    assert console.has(
        "storage stopped without the launcher asking (exit code 0); restarting in 0.5 s"
    )
    new_pid = farm.process("storage").pid
    assert new_pid != first_pid
    assert starts(stand_ins, "storage") == [first_pid, new_pid]
    assert pid_file(farm, "storage") == new_pid
    assert grpc_serving(f"127.0.0.1:{farm.config.ports.storage}")


async def test_a_service_down_until_its_restart_is_named_by_its_pid_file(
    services_config: FarmConfig,
    console: Console,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    farm = LocalFarm(
        replace(services_config, restart_policy=RestartPolicy(first_delay=30)),
        report=console.append,
    )
    farm.start()
    try:
        farm.start_supervisor(interval=0.05)
        storage_pid = farm.process("storage").pid
        farm.process("storage").signal(signal.SIGTERM)
        await assert_eventually(lambda: farm.phase("storage") is Phase.WAITING, within=20)
        assert pid_file(farm, "storage") == storage_pid
        # What `farm status` reads: storage is the one part down.
        assert [str(part) for part in not_running(farm.run_dir)] == [
            f"storage: not running (pid {storage_pid} exited)"
        ]
        # `farm status` of this FARM_HOME names it, though the stand-ins cannot give a status.
        monkeypatch.delenv("FARM_URL", raising=False)
        monkeypatch.delenv("FARM_API_KEY", raising=False)
        monkeypatch.setenv("FARM_HOME", str(farm.home))
        assert main(["status"]) != 0
        shown = capsys.readouterr().err.splitlines()
        assert f"  storage: not running (pid {storage_pid} exited)" in shown
    finally:
        farm.stop()


async def test_stopping_the_farm_during_a_backoff_cancels_the_restart(
    services_config: FarmConfig, console: Console, stand_ins: Path
) -> None:
    config = replace(services_config, restart_policy=RestartPolicy(first_delay=30))
    farm = LocalFarm(config, report=console.append)
    farm.start()
    try:
        farm.start_supervisor(interval=0.05)
        farm.kill("scheduler", signal.SIGKILL)
        await assert_eventually(lambda: farm.phase("scheduler") is Phase.WAITING, within=10)
        assert console.has("scheduler died (SIGKILL); restarting in 30 s")
    finally:
        farm.stop()
    assert len(starts(stand_ins, "scheduler")) == 1
    assert list(farm.run_dir.glob("*.pid")) == []


async def test_a_process_stopped_on_request_stays_down_until_started_again(
    farm: LocalFarm, console: Console, stand_ins: Path
) -> None:
    farm.stop_process("storage")
    assert farm.phase("storage") is Phase.HELD
    assert pid_file(farm, "storage") is None
    assert not grpc_serving(f"127.0.0.1:{farm.config.ports.storage}")
    assert console.has("storage stopped on request")

    farm.start_process("storage")
    assert grpc_serving(f"127.0.0.1:{farm.config.ports.storage}")
    assert pid_file(farm, "storage") == farm.process("storage").pid
    assert len(starts(stand_ins, "storage")) == 2
    with pytest.raises(RuntimeError, match="storage is already running"):
        farm.start_process("storage")
