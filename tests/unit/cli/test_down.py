"""`farm down` stops the launcher holding FARM_HOME, as Ctrl-C in its terminal would."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from farm_cli.launcher.lock import lock_holder
from farm_cli.main import main

# A stand-in for `farm up`: holds FARM_HOME's lock until SIGTERM, then lets go and says so.
LAUNCHER = """
import signal, sys
from pathlib import Path
from farm_cli.launcher.lock import FarmLock

lock = FarmLock(Path(sys.argv[1]) / "run")
lock.acquire()
def stop(*_):
    lock.release()
    print("stopped", flush=True)
    sys.exit(0)

signal.signal(signal.SIGTERM, stop)
print("holding", flush=True)
signal.pause()
"""


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator["subprocess.Popen[str]"]:
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline() == "holding\n"
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)
    process.stdout.close()


def test_down_stops_the_launcher_and_waits_for_it(
    launcher: "subprocess.Popen[str]",
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FARM_HOME", str(tmp_path))
    assert lock_holder(tmp_path / "run") == launcher.pid
    assert main(["down", "--timeout", "30"]) == 0
    assert lock_holder(tmp_path / "run") is None
    assert launcher.wait(timeout=10) == 0
    assert launcher.stdout is not None and launcher.stdout.read() == "stopped\n"
    assert f"launcher PID {launcher.pid}" in capsys.readouterr().out


def test_down_without_a_farm_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FARM_HOME", str(tmp_path))
    assert main(["down"]) == 1
    assert capsys.readouterr().err == f"error: no farm is running with FARM_HOME {tmp_path}\n"


@pytest.mark.parametrize(
    ("timeout", "error"),
    [
        ("-1", "must be 0 or more seconds, got '-1'"),
        ("nan", "must be 0 or more seconds, got 'nan'"),
        ("soon", "not a number of seconds: 'soon'"),
    ],
)
def test_a_bad_timeout_is_a_usage_error_and_leaves_the_farm_running(
    timeout: str,
    error: str,
    launcher: "subprocess.Popen[str]",
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FARM_HOME", str(tmp_path))
    with pytest.raises(SystemExit) as exited:
        main(["down", "--timeout", timeout])

    assert exited.value.code == 2
    assert capsys.readouterr().err.endswith(f"farm down: error: argument --timeout: {error}\n")
    assert lock_holder(tmp_path / "run") == launcher.pid
    assert launcher.poll() is None


# A farm process a killed launcher left: on SIGTERM it notes its name and exits.
LEFTOVER = """
import signal, sys, time
from pathlib import Path

def stop(*_):
    with Path(sys.argv[1]).open("a") as stopped:
        stopped.write(sys.argv[2] + "\\n")
    sys.exit(0)

signal.signal(signal.SIGTERM, stop)
print("running", flush=True)
time.sleep(60)
"""


def test_down_stops_what_a_killed_launcher_left_running_in_the_launchers_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    stopped = tmp_path / "stopped"
    names = ["nats", "scheduler", "agent-1", "envoy"]
    processes = []
    for name in names:
        process = subprocess.Popen(
            [sys.executable, "-c", LEFTOVER, str(stopped), name],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        processes.append(process)
        assert process.stdout is not None and process.stdout.readline() == "running\n"
        (run_dir / f"{name}.pid").write_text(f"{process.pid}\n")
    monkeypatch.setenv("FARM_HOME", str(tmp_path))
    try:
        assert main(["down", "--timeout", "30"]) == 0
        assert [process.wait(timeout=10) for process in processes] == [0, 0, 0, 0]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
            assert process.stdout is not None
            process.stdout.close()
    # Envoy first, NATS last, as the launcher stops them.
    assert stopped.read_text().split() == ["envoy", "agent-1", "scheduler", "nats"]
    assert list(run_dir.glob("*.pid")) == []
    out = capsys.readouterr().out
    assert f"agent-1 (PID {processes[2].pid})" in out and out.endswith("the farm has stopped\n")


def test_down_leaves_alone_a_process_that_took_a_pid_files_pid_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pid_file = run_dir / "nats.pid"
        pid_file.write_text(f"{stranger.pid}\n")
        # Written long before the process started: the farm's nats ended, its PID reused.
        written = time.time() - 600
        os.utime(pid_file, (written, written))
        monkeypatch.setenv("FARM_HOME", str(tmp_path))
        assert main(["down", "--timeout", "5"]) == 1
        assert stranger.poll() is None
        assert not pid_file.exists()
        assert "no farm is running" in capsys.readouterr().err
    finally:
        stranger.kill()
        stranger.wait(timeout=10)


# weed's graceful stop: it takes SIGTERM and goes on (15 s, for nothing of use).
SLOW_WEED = """
import signal, time
signal.signal(signal.SIGTERM, lambda *_: None)
print("running", flush=True)
time.sleep(60)
"""


def test_down_gives_a_left_seaweedfs_the_launchers_short_stop_and_forgets_the_edge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (tmp_path / "edge.json").write_text('{"url": "http://127.0.0.1:9"}')
    weed = subprocess.Popen(
        [sys.executable, "-c", SLOW_WEED], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert weed.stdout is not None and weed.stdout.readline() == "running\n"
        (run_dir / "seaweedfs.pid").write_text(f"{weed.pid}\n")
        monkeypatch.setenv("FARM_HOME", str(tmp_path))

        assert main(["down", "--timeout", "20"]) == 0

        # Killed once the launcher's seaweedfs_stop_timeout was over, not --timeout's 20 s.
        assert weed.wait(timeout=10) == -9
        assert "did not stop within" not in capsys.readouterr().out
        assert not (tmp_path / "edge.json").exists()
    finally:
        if weed.poll() is None:
            weed.kill()
        weed.wait(timeout=10)
        assert weed.stdout is not None
        weed.stdout.close()
