"""TempDirs: a sweep removes what a gone run of the agent made, and nothing else."""

import json
import os
from pathlib import Path

import pytest

from farm_agent.browser.temp_dirs import Owner, TempDirs


@pytest.fixture
def parent(tmp_path: Path) -> Path:
    """Stands in for /tmp."""
    folder = tmp_path / "shared-tmp"
    folder.mkdir()
    return folder


def gone_run(records: Path, parent: Path) -> TempDirs:
    """TempDirs of an earlier run: this pid, but a process started at another time."""
    return TempDirs(records, parent, Owner(os.getpid(), 0.0))


def test_a_sweep_removes_the_directories_of_a_gone_run_and_their_records(
    tmp_path: Path, parent: Path
) -> None:
    records = tmp_path / "records"
    earlier = gone_run(records, parent)
    made = [earlier.make("farm-agent-"), earlier.make("farm-session-")]
    (made[0] / "socket-dir").mkdir()
    (made[0] / "socket-dir" / "data").write_bytes(b"x" * 1000)

    swept = TempDirs(records, parent).sweep()

    assert sorted(swept.paths) == sorted(made)
    assert swept.bytes_removed == 1000
    assert list(parent.iterdir()) == []
    assert list(records.iterdir()) == []


def test_a_sweep_leaves_the_directories_of_a_run_that_still_runs(
    tmp_path: Path, parent: Path
) -> None:
    records = tmp_path / "records"
    live = TempDirs(records, parent).make("farm-agent-")

    swept = TempDirs(records, parent).sweep()

    assert (swept.paths, swept.left_to_live_owners) == ((), 1)
    assert live.is_dir()


def test_a_record_naming_what_the_agent_did_not_make_removes_nothing(
    tmp_path: Path, parent: Path
) -> None:
    records = tmp_path / "records"
    earlier = gone_run(records, parent)
    made = earlier.make("farm-agent-")
    foreign = parent / "someone-elses"
    foreign.mkdir()
    (records / "someone-elses.json").write_text(
        json.dumps({"path": str(foreign), "pid": os.getpid(), "started": 0.0})
    )
    # A link put where a recorded directory was: neither it nor its target goes.
    made.rmdir()
    made.symlink_to(foreign)
    (records / "cut-short.json").write_text('{"path": ')

    swept = TempDirs(records, parent).sweep()

    assert swept.paths == ()
    assert foreign.is_dir() and made.is_symlink()
    assert list(records.iterdir()) == []


def test_a_removed_directory_leaves_no_record(tmp_path: Path, parent: Path) -> None:
    records = tmp_path / "records"
    temp_dirs = TempDirs(records, parent)
    made = temp_dirs.make("farm-session-")
    assert made.stat().st_mode & 0o777 == 0o700

    temp_dirs.remove(made)
    temp_dirs.forget_records()

    assert not made.exists() and not records.exists()
