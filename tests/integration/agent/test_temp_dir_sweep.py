"""A killed agent's temporary directories in /tmp are removed by its next start, no one else's.

With a deep FARM_HOME, Chromium's TMPDIR (which holds its singleton socket) cannot be
under the scratch directory, so the agent makes it in /tmp: one for the pool's task
browsers, one per session browser. Real agent processes with real Chromium.
"""

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
import uuid
from pathlib import Path

import psutil
import pytest

from farm_agent.browser.chromium import MAX_BROWSER_TMPDIR_CHARS
from tests.helpers import assert_eventually
from tests.integration.agent.agent_processes import AgentProcesses
from tests.integration.agent.conftest import HAVE_CHROMIUM

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium"),
]

# Deep enough that Chromium's socket path cannot fit under the scratch directory.
DEEP = "a-farm-home-deeper-than-a-socket-address-holds"
STARTED_WITHIN_SECONDS = 90


def scratch_of(home: Path, agent_id: str) -> Path:
    """Where the agent's browser profiles live (FARM_HOME/agents/<id>/tmp)."""
    return (home / "agents" / agent_id / "tmp").resolve()


def temp_dirs_of_browsers(scratch: Path) -> set[Path]:
    """The TMPDIRs outside `scratch` of the running Chromiums whose profile is under it."""
    found = set()
    for process in psutil.process_iter(["cmdline", "status"]):
        with contextlib.suppress(psutil.Error):
            if process.info["status"] == psutil.STATUS_ZOMBIE or not any(
                argument.startswith(f"--user-data-dir={scratch}/")
                for argument in process.info["cmdline"] or ()
            ):
                continue
            temp_dir = Path(process.environ().get("TMPDIR", str(scratch)))
            if not temp_dir.is_relative_to(scratch.parent):
                found.add(temp_dir)
    return found


async def task_and_session_temp_dirs(scratch: Path) -> set[Path]:
    """Waits until a task browser and a (spare) session browser run; their TMPDIRs."""

    def both() -> bool:
        names = {path.name.rsplit("-", 1)[0] for path in temp_dirs_of_browsers(scratch)}
        return names == {"farm-agent", "farm-session"}

    await assert_eventually(
        both,
        within=STARTED_WITHIN_SECONDS,
        message=lambda: (
            f"no task and session browser under {scratch}: {temp_dirs_of_browsers(scratch)}"
        ),
    )
    return temp_dirs_of_browsers(scratch)


async def test_a_restarted_agent_removes_the_temporary_dirs_its_killed_run_left(
    agent_processes: AgentProcesses, tmp_path: Path
) -> None:
    home = tmp_path / DEEP
    killed_id, other_id = f"swept-{uuid.uuid4().hex[:6]}", f"kept-{uuid.uuid4().hex[:6]}"
    assert len(str(scratch_of(home, killed_id))) > MAX_BROWSER_TMPDIR_CHARS
    seen: set[Path] = set()
    try:
        killed = await agent_processes.start(home, killed_id)
        await agent_processes.start(home, other_id)
        left = await task_and_session_temp_dirs(scratch_of(home, killed_id))
        kept = await task_and_session_temp_dirs(scratch_of(home, other_id))
        seen |= left | kept
        assert all(path.parent == Path(tempfile.gettempdir()) for path in seen), seen

        os.kill(killed.pid, signal.SIGKILL)
        await asyncio.wait_for(killed.wait(), 10)
        await assert_eventually(
            lambda: not temp_dirs_of_browsers(scratch_of(home, killed_id)),
            within=30,
            message="the killed agent's browsers run on",
        )
        assert all(path.is_dir() for path in left), "a SIGKILLed agent left no directory"

        await agent_processes.start(home, killed_id)
        fresh = await task_and_session_temp_dirs(scratch_of(home, killed_id))
        seen |= fresh
        assert fresh.isdisjoint(left)
        await assert_eventually(
            lambda: not any(path.exists() for path in left),
            within=30,
            message=lambda: (
                f"the killed run's directories stay: {[path for path in left if path.exists()]}"
            ),
        )
        log = (home / f"{killed_id}.log").read_text()
        assert "removed 2 temporary directories" in log
        assert all(str(path) in log for path in left)

        # The other agent, alive all along, keeps its directories and its browsers.
        assert all(path.is_dir() for path in kept)
        assert temp_dirs_of_browsers(scratch_of(home, other_id)) == kept
    finally:
        await agent_processes.stop_all()
        for path in seen:
            shutil.rmtree(path, ignore_errors=True)
