"""`farm status` against a local farm names the processes its launcher started that are down.

The farm's status comes from the fake AdminService; what is down comes from
FARM_HOME's pid files, which name real processes: one running, one that exited and
was reaped, one that exited and was not (a zombie).
"""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from farm_cli.launcher.edge import remove_edge_record, write_edge_record
from farm_cli.launcher.lock import FarmLock
from farm_cli.launcher.pid_files import Life, PidFile, not_running
from farm_cli.main import main
from tests.unit.cli.conftest import KEY
from tests.unit.cli.fake_calls import Calls
from tests.unit.cli.fake_services import start_single_server

QUICK_EXIT = [sys.executable, "-c", "pass"]


def exited_pid() -> int:
    """The PID of a child that ran, exited and was reaped: no process has it now."""
    child = subprocess.Popen(QUICK_EXIT)
    child.wait(timeout=30)
    return child.pid


@pytest.fixture
def zombie() -> Iterator[int]:
    """The PID of a child that exited and is not reaped yet."""
    child = subprocess.Popen(QUICK_EXIT)
    deadline = time.monotonic() + 30
    while not Path(f"/proc/{child.pid}/stat").read_text().split(") ")[1].startswith("Z"):
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.02)
    yield child.pid
    child.wait(timeout=30)


@pytest.fixture
def sleeper() -> Iterator[int]:
    """The PID of a child that runs until the test ends."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield child.pid
    child.kill()
    child.wait(timeout=30)


@pytest.fixture
def local_farm(
    fake: tuple[int, Calls], farm_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A FARM_HOME whose launcher (this process) runs the fake farm; no FARM_URL."""
    monkeypatch.delenv("FARM_URL", raising=False)
    monkeypatch.setenv("FARM_API_KEY", KEY)
    monkeypatch.setenv("FARM_HOME", str(farm_home))
    lock = FarmLock(farm_home / "run")
    lock.acquire()
    write_edge_record(farm_home, f"http://127.0.0.1:{fake[0]}", None)
    yield farm_home
    remove_edge_record(farm_home)
    lock.release()


def write_pid(home: Path, name: str, pid: int) -> None:
    (home / "run" / f"{name}.pid").write_text(f"{pid}\n")


def test_status_names_the_parts_that_are_not_running_and_exits_5(
    local_farm: Path, sleeper: int, zombie: int, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = exited_pid()
    write_pid(local_farm, "nats", sleeper)
    write_pid(local_farm, "storage", gone)
    write_pid(local_farm, "agent-1", zombie)

    assert main(["status"]) == 5

    lines = capsys.readouterr().out.splitlines()
    assert "Agents: 2 (1 ready, 0 draining, 1 lost)" in lines
    down = lines[
        lines.index(f"Not running (2 of the local farm's processes; logs in {local_farm}/logs):") :
    ]
    assert down[1:] == [
        f"  agent-1: not running (pid {zombie} is a zombie)",
        f"  storage: not running (pid {gone} exited)",
    ]


def test_status_of_a_local_farm_whose_parts_all_run_exits_0(
    local_farm: Path, sleeper: int, capsys: pytest.CaptureFixture[str]
) -> None:
    write_pid(local_farm, "nats", sleeper)

    assert main(["status"]) == 0
    assert "Not running" not in capsys.readouterr().out


def test_status_json_stays_json_and_names_the_parts_down_on_stderr(
    local_farm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = exited_pid()
    write_pid(local_farm, "scheduler", gone)

    assert main(["status", "--json"]) == 5

    printed = capsys.readouterr()
    assert json.loads(printed.out)["tasks"]["queued"] == "4"
    assert f"  scheduler: not running (pid {gone} exited)" in printed.err.splitlines()


def test_status_of_a_farm_named_by_farm_url_leaves_farm_homes_pid_files_alone(
    calls: Calls,
    farm_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FARM_HOME", str(farm_home))
    (farm_home / "run").mkdir()
    write_pid(farm_home, "storage", exited_pid())

    assert main(["status"]) == 0
    assert "Not running" not in capsys.readouterr().out


def test_when_the_status_cannot_be_read_the_parts_down_come_before_the_error(
    local_farm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The edge is down too: the farm's record names an address nothing answers on.
    server, port, _ = start_single_server()
    server.stop(grace=None)
    write_edge_record(local_farm, f"http://127.0.0.1:{port}", None)
    gone = exited_pid()
    write_pid(local_farm, "envoy", gone)

    assert main(["status"]) == 1

    err = capsys.readouterr().err.splitlines()
    assert err[1] == f"  envoy: not running (pid {gone} exited)"
    assert err[2].startswith("error: UNAVAILABLE")


def test_a_pid_taken_by_a_process_started_after_its_file_is_not_the_farms(
    farm_home: Path, sleeper: int
) -> None:
    run_dir = farm_home / "run"
    run_dir.mkdir()
    write_pid(farm_home, "auth", sleeper)
    written_long_ago = time.time() - 3600
    os.utime(run_dir / "auth.pid", (written_long_ago, written_long_ago))

    assert PidFile("auth", sleeper, run_dir / "auth.pid").life() is Life.EXITED
    assert [str(part) for part in not_running(run_dir)] == [
        f"auth: not running (pid {sleeper} exited)"
    ]


def test_status_after_a_killed_launcher_names_the_processes_still_running(
    farm_home: Path,
    sleeper: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # No launcher holds FARM_HOME and no edge.json says where its farm is, yet a process
    # its launcher started still serves: "no farm to call" is not the whole story.
    monkeypatch.delenv("FARM_URL", raising=False)
    monkeypatch.delenv("FARM_API_KEY", raising=False)
    monkeypatch.setenv("FARM_HOME", str(farm_home))
    (farm_home / "admin-key").write_text(KEY)
    (farm_home / "run").mkdir()
    write_pid(farm_home, "nats", sleeper)
    write_pid(farm_home, "storage", exited_pid())

    assert main(["status"]) == 1

    err = capsys.readouterr().err.splitlines()
    assert (
        f"Still running without their launcher (it was killed): nats (PID {sleeper}); " in err[-2]
    )
    assert err[-2].endswith("`farm down` stops them")
    assert err[-1].startswith("error: no farm to call")


def test_status_names_no_orphans_while_a_launcher_holds_farm_home(
    local_farm: Path, sleeper: int, capsys: pytest.CaptureFixture[str]
) -> None:
    server, port, _ = start_single_server()
    server.stop(grace=None)
    write_edge_record(local_farm, f"http://127.0.0.1:{port}", None)
    write_pid(local_farm, "nats", sleeper)

    assert main(["status"]) == 1
    assert "Still running without their launcher" not in capsys.readouterr().err
