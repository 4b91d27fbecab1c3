"""`farm up` as a user runs it: a real process, stopped by SIGTERM."""

import json
import os
import random
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from farm_cli.launcher.infra import binary
from farm_cli.launcher.ports import FarmPorts, check_port_offset, port_is_free
from tests.conftest import FIRST_TEST_PORT, PORTS_PER_WORKER
from tests.helpers import eventually
from tests.integration.cli.conftest import ROOT, pid_files, running

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Variables that would make `farm up` use outside infrastructure or keys.
OUTSIDE = ("NATS_URL", "S3_ENDPOINT", "DATABASE_URL", "FARM_ADMIN_KEY", "FARM_IDENTITY_KEY")


@pytest.fixture
def farm_env(farm_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OUTSIDE}
    return {**env, **FarmPorts.free().environment(), "FARM_HOME": str(farm_home)}


@pytest.fixture
def farm_up(farm_env: dict[str, str], farm_home: Path) -> Iterator[subprocess.Popen[bytes]]:
    output = (farm_home.parent / "farm-up.out").open("wb")
    process = subprocess.Popen(
        [binary("farm"), "up", "--infra-only"],
        cwd=ROOT,
        env=farm_env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        output.close()


def farm_up_at_once(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`farm up ARGS` run in `cwd` that is expected to exit at once; what it printed."""
    return subprocess.run(
        [binary("farm"), "up", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def output_of(farm_home: Path) -> str:
    return (farm_home.parent / "farm-up.out").read_text()


def test_farm_up_restarts_a_killed_process_and_sigterm_stops_everything(
    farm_up: subprocess.Popen[bytes], farm_env: dict[str, str], farm_home: Path
) -> None:
    eventually(
        lambda: "Ctrl-C stops it." in output_of(farm_home) or farm_up.poll() is not None,
        within=90,
        interval=0.1,
        message="farm up did not say it was up",
    )
    assert farm_up.poll() is None, output_of(farm_home)
    run_dir = farm_home / "run"
    pids = pid_files(farm_home)
    assert set(pids) == {"nats", "seaweedfs", "envoy"}
    assert all(running(pid) for pid in pids.values())
    assert (run_dir / "farm.lock").read_text().strip() == str(farm_up.pid)
    # psutil.Process checks the process is still the one it found before signalling it.
    nats = psutil.Process(pids["nats"])

    second = farm_up_at_once(ROOT, farm_env, "--infra-only")
    assert second.returncode == 1
    assert f"a farm is already running with FARM_HOME {farm_home}" in second.stderr
    assert all(running(pid) for pid in pids.values())

    nats.kill()
    eventually(
        lambda: "nats back up" in output_of(farm_home),
        within=60,
        interval=0.1,
        message="nats was not restarted",
    )
    assert "nats died (SIGKILL); restarting in 1 s" in output_of(farm_home)
    pids = pid_files(farm_home)
    assert set(pids) == {"nats", "seaweedfs", "envoy"}
    processes = [psutil.Process(pid) for pid in pids.values()]

    farm_up.send_signal(signal.SIGTERM)
    assert farm_up.wait(timeout=60) == 0, output_of(farm_home)
    assert not any(process.is_running() for process in processes)
    assert list(run_dir.glob("*.pid")) == []
    assert "the farm has stopped" in output_of(farm_home)


def test_farm_up_outside_a_checkout_says_where_it_looked(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FARM_HOME"}
    result = farm_up_at_once(tmp_path, env)
    assert result.returncode == 1
    assert result.stderr.startswith("error: no browserfarm checkout found from")


# Ports other tests and the machine's servers use (PostgreSQL, Redis, NATS), which a
# moved farm must not take even for a moment.
RESERVED_PORTS = frozenset({5432, 6379, 4222})


def free_port_offset(attempts: int = 200) -> int:
    """An offset that puts every port of a one-agent farm on a free port above every
    pytest worker's range of free ports (tests.conftest), so that no other worker's
    farm draws a port this one is about to bind, and clear of RESERVED_PORTS."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    above_workers = FIRST_TEST_PORT + workers * PORTS_PER_WORKER
    ports = [port for _, port in FarmPorts().all_ports(agents=1)]
    lowest = max(1000, above_workers - min(ports))
    for _ in range(attempts):
        offset = random.randrange(lowest, lowest + PORTS_PER_WORKER)
        try:
            check_port_offset(offset)
        except ValueError:
            continue
        moved = [port + offset for port in ports]
        if RESERVED_PORTS.isdisjoint(moved) and all(port_is_free(p) for p in moved):
            return offset
    raise AssertionError("no free port offset found")


def test_farm_up_with_a_port_offset_is_found_by_the_cli_through_farm_home(
    farm_home: Path, tmp_path: Path
) -> None:
    named = ("FARM_URL", "FARM_API_KEY", "FARM_CA_FILE")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in OUTSIDE + named and not (k.startswith("FARM_") and k.endswith("_PORT"))
    }
    env["FARM_HOME"] = str(farm_home)
    offset = free_port_offset()
    envoy_url = f"http://127.0.0.1:{FarmPorts.envoy + offset}"
    output = (farm_home.parent / "farm-up.out").open("wb")
    farm = subprocess.Popen(
        [binary("farm"), "up", "--agents", "0", "--port-offset", str(offset)],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        eventually(
            lambda: "Ctrl-C stops the farm." in output_of(farm_home) or farm.poll() is not None,
            within=120,
            interval=0.2,
            message="farm up did not say it was up",
        )
        assert farm.poll() is None, output_of(farm_home)
        assert f"browserfarm is up at {envoy_url}" in output_of(farm_home)
        edge = json.loads((farm_home / "edge.json").read_text())
        assert edge["url"] == envoy_url and edge["launcher_pid"] == farm.pid

        # Neither FARM_URL nor FARM_API_KEY: the key and the URL both come from FARM_HOME,
        # and from a folder outside the checkout.
        whoami = subprocess.run(
            [binary("farm"), "whoami"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert whoami.returncode == 0, whoami.stderr
        assert "admin" in json.loads(whoami.stdout)["scopes"]

        farm.send_signal(signal.SIGTERM)
        assert farm.wait(timeout=60) == 0, output_of(farm_home)
        assert not (farm_home / "edge.json").exists()
    finally:
        if farm.poll() is None:
            farm.send_signal(signal.SIGTERM)
            farm.wait(timeout=60)
        output.close()
