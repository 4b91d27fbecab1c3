"""The local farm's secrets on disk and its one-launcher-per-FARM_HOME lock."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from farm_cli.launcher.credentials import (
    load_or_create_s3_credentials,
    new_admin_key,
    resolve_admin_key,
)
from farm_cli.launcher.lock import FarmAlreadyRunning, FarmLock, check_no_leftovers


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_admin_key_is_created_private_and_reused(farm_home: Path) -> None:
    path = farm_home / "admin-key"
    first = resolve_admin_key(path, None)
    assert first.startswith("bf_") and len(first) > 40
    assert mode(path) == 0o600
    assert resolve_admin_key(path, None) == first


def test_farm_admin_key_wins_and_is_written_for_the_cli(farm_home: Path) -> None:
    path = farm_home / "admin-key"
    resolve_admin_key(path, None)
    assert resolve_admin_key(path, "bf_from-env") == "bf_from-env"
    assert path.read_text().strip() == "bf_from-env"
    assert mode(path) == 0o600


def test_admin_keys_are_random() -> None:
    assert new_admin_key() != new_admin_key()


def test_s3_credentials_are_created_private_and_reused(farm_home: Path) -> None:
    path = farm_home / "seaweedfs" / "credentials.json"
    first = load_or_create_s3_credentials(path)
    assert mode(path) == 0o600
    assert load_or_create_s3_credentials(path) == first
    assert len(first.secret_key) >= 32


def test_a_second_lock_on_the_same_home_is_refused_with_the_holders_pid(farm_home: Path) -> None:
    first = FarmLock(farm_home / "run")
    first.acquire()
    try:
        with pytest.raises(FarmAlreadyRunning, match=f"launcher PID {os.getpid()}"):
            FarmLock(farm_home / "run").acquire()
    finally:
        first.release()
    second = FarmLock(farm_home / "run")
    second.acquire()
    second.release()


def test_pid_files_of_live_processes_block_a_start(farm_home: Path) -> None:
    run_dir = farm_home / "run"
    run_dir.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run_dir / "nats.pid").write_text(f"{sleeper.pid}\n")
        with pytest.raises(FarmAlreadyRunning, match=f"nats \\(PID {sleeper.pid}\\)"):
            check_no_leftovers(run_dir)
    finally:
        sleeper.kill()
        sleeper.wait(timeout=10)
    check_no_leftovers(run_dir)
    assert not (run_dir / "nats.pid").exists()
