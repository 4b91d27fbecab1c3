"""The launcher signals its processes' PIDs only while they are still the processes it started."""

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from farm_cli.launcher.config import FarmConfig
from farm_cli.launcher.farm import LocalFarm
from farm_cli.launcher.processes import ManagedProcess, ProcessSpec
from farm_cli.launcher.supervisor import Role

ROOT = Path(__file__).resolve().parents[3]
Sent = list[tuple[str, int, int]]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Sent:
    """Every os.kill and os.killpg, recorded instead of sent, with whether its PID was ours.

    A PID is ours while its process has not been reaped (a zombie still holds it).
    """
    recorded: Sent = []

    def record(call: str):  # type: ignore[no-untyped-def]
        def send(pid: int, signum: int) -> None:
            recorded.append((call, pid, signum))
            assert Path(f"/proc/{pid}").exists(), f"{call}({pid}) after {pid} was reaped"

        return send

    monkeypatch.setattr(os, "kill", record("kill"))
    monkeypatch.setattr(os, "killpg", record("killpg"))
    return recorded


def ended(process: ManagedProcess) -> int:
    """Waits (bounded) until `process` has ended and been reaped; its exit code."""
    deadline = time.monotonic() + 10
    while (code := process.exit_code()) is None:
        assert time.monotonic() < deadline, f"{process.name} did not end"
        time.sleep(0.02)
    return code


def quick_process(tmp_path: Path) -> ManagedProcess:
    """A started process that exits at once."""
    process = ManagedProcess(
        ProcessSpec("quick", [sys.executable, "-c", "pass"]), tmp_path / "logs", tmp_path / "run"
    )
    process.start()
    return process


def test_killing_a_process_that_ended_signals_no_pid(tmp_path: Path, sent: Sent) -> None:
    farm = LocalFarm(FarmConfig(root=ROOT, home=tmp_path))
    farm._launched.launch(
        ProcessSpec("quick", [sys.executable, "-c", "pass"]), lambda: True, 5, Role.SERVICE
    )
    assert ended(farm.process("quick")) == 0
    sent.clear()  # the group was cleared before the reap: that was allowed

    farm.kill("quick", signal.SIGKILL)
    farm.process("quick").signal(signal.SIGTERM)
    farm.process("quick").stop()

    assert sent == []


def test_the_group_of_an_ended_process_is_cleared_before_it_is_reaped(
    tmp_path: Path, sent: Sent
) -> None:
    process = quick_process(tmp_path)
    deadline = time.monotonic() + 10
    while not Path(f"/proc/{process.pid}/stat").read_text().split(") ")[1].startswith("Z"):
        assert time.monotonic() < deadline, "the process did not end"
        time.sleep(0.02)

    assert process.reap() == 0

    assert sent == [("killpg", process.pid, signal.SIGKILL)]
    assert not process.pid_path.exists()


def test_a_reap_that_keeps_the_pid_file_leaves_it_for_stop_to_remove(tmp_path: Path) -> None:
    process = quick_process(tmp_path)
    assert ended(process) == 0

    assert process.reap(keep_pid_file=True) == 0
    assert process.pid_path.read_text() == f"{process.pid}\n"
    assert process.stop() == 0
    assert not process.pid_path.exists()


def test_kill_signals_a_running_process_only(tmp_path: Path) -> None:
    process = ManagedProcess(
        ProcessSpec("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"]),
        tmp_path / "logs",
        tmp_path / "run",
    )
    process.start()
    try:
        process.send_signal(signal.SIGKILL)
        assert ended(process) == -signal.SIGKILL
    finally:
        process.stop(timeout=1)


# A process that stops its child itself on SIGTERM, as an agent stops Playwright's driver;
# the child writes the PID of the first SIGTERM's sender.
STOPS_ITS_CHILD = """
import signal, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]])
def stop(*_):
    child.terminate()
    child.wait(10)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
time.sleep(60)
"""
CHILD = """
import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
open(sys.argv[1] + ".ready", "w").close()
sender = signal.sigwaitinfo({signal.SIGTERM}).si_pid
with open(sys.argv[1], "w") as out:
    out.write(str(sender))
"""


def test_stop_lets_a_process_stop_its_own_children(tmp_path: Path) -> None:
    report = tmp_path / "sender"
    process = ManagedProcess(
        ProcessSpec("parent", [sys.executable, "-c", STOPS_ITS_CHILD, CHILD, str(report)]),
        tmp_path / "logs",
        tmp_path / "run",
    )
    process.start()
    deadline = time.monotonic() + 10
    while not Path(f"{report}.ready").exists():
        assert time.monotonic() < deadline, "the child did not start"
        time.sleep(0.02)

    assert process.stop(timeout=10) == 0

    assert report.read_text() == str(process.pid)
