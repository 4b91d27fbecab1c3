"""The agent's children are started with no Python in their fork, and awaited by pidfd."""

import asyncio
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
import pytest
import uvloop

from farm_agent import child_process
from farm_agent.child_process import start_child
from tests.fork_marks import fork_marks


def test_no_python_runs_in_the_fork_on_the_agents_loop(tmp_path: Path) -> None:
    # On uvloop, asyncio.create_subprocess_exec ran the hooks in the child (uvloop
    # issue 749): in a fork of the agent's threads that crashed now and then.
    marks = tmp_path / "marks"

    async def start_and_wait() -> int:
        process = await start_child(["true"], start_new_session=True)
        return await process.wait()

    with fork_marks(marks):
        assert uvloop.run(start_and_wait()) == 0
    assert not marks.exists(), marks.read_text()


async def test_wait_gives_the_exit_status_and_returncode_follows_it() -> None:
    process = await start_child(["sh", "-c", "sleep 0.3; exit 3"])
    assert process.returncode is None
    assert await process.wait() == 3
    assert process.returncode == 3
    assert await process.wait() == 3


async def test_a_killed_child_is_awaited() -> None:
    process = await start_child(["sleep", "30"], stdin=subprocess.DEVNULL)
    process.kill()
    assert await asyncio.wait_for(process.wait(), timeout=30) == -9


def sleepers() -> list[psutil.Process]:
    return [
        child
        for child in psutil.Process().children()
        if child.status() != psutil.STATUS_ZOMBIE and child.cmdline()[:2] == ["sleep", "31"]
    ]


async def test_a_start_cancelled_while_the_child_starts_leaves_no_child(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The thread has started the child but not handed it over when the start is
    # cancelled: the child is ended once the thread is done, not left running.
    spawned, release = threading.Event(), threading.Event()

    def held_popen(command: Sequence[str], options: dict[str, Any]) -> "subprocess.Popen[bytes]":
        popen = subprocess.Popen(command, **options)
        spawned.set()
        release.wait(30)
        return popen

    monkeypatch.setattr(child_process, "_popen", held_popen)
    starting = asyncio.ensure_future(start_child(["sleep", "31"], start_new_session=True))
    try:
        assert await asyncio.to_thread(spawned.wait, 30), "the child was not started"
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting
    finally:
        release.set()
    for _ in range(300):
        if not sleepers():
            break
        await asyncio.sleep(0.1)
    assert not sleepers()
