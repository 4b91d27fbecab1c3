"""A session browser's process is started with no Python in its fork, and awaited by pidfd."""

import asyncio
import os
import subprocess
from pathlib import Path

import psutil
import pytest
import uvloop

from farm_agent.sessions.browser_process import start_process

_marks: list[Path] = []


def _mark_in_child() -> None:
    # Runs in a forked child only if its fork runs Python's after-fork hooks.
    for path in _marks:
        with path.open("a") as marks:
            marks.write("python ran in the fork\n")


os.register_at_fork(after_in_child=_mark_in_child)


def test_no_python_runs_in_the_fork_on_the_agents_loop(tmp_path: Path) -> None:
    # On uvloop, asyncio.create_subprocess_exec ran the hooks in the child (uvloop
    # issue 749): in a fork of the agent's threads that crashed now and then.
    marks = tmp_path / "marks"
    _marks.append(marks)

    async def start_and_wait() -> int:
        process = await start_process(["true"], start_new_session=True)
        return await process.wait()

    try:
        assert uvloop.run(start_and_wait()) == 0
    finally:
        _marks.remove(marks)
    assert not marks.exists(), marks.read_text()


async def test_wait_gives_the_exit_status_and_returncode_follows_it() -> None:
    process = await start_process(["sh", "-c", "sleep 0.3; exit 3"])
    assert process.returncode is None
    assert await process.wait() == 3
    assert process.returncode == 3
    assert await process.wait() == 3


async def test_a_killed_child_is_awaited() -> None:
    process = await start_process(["sleep", "30"], stdin=subprocess.DEVNULL)
    process.kill()
    assert await asyncio.wait_for(process.wait(), timeout=30) == -9


def sleepers() -> list[psutil.Process]:
    return [
        child
        for child in psutil.Process().children()
        if child.status() != psutil.STATUS_ZOMBIE and child.cmdline()[:2] == ["sleep", "31"]
    ]


async def test_a_start_cancelled_while_the_child_starts_leaves_no_child() -> None:
    starting = asyncio.ensure_future(start_process(["sleep", "31"], start_new_session=True))
    await asyncio.sleep(0)  # the thread is on its way to start it
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    for _ in range(300):
        if not sleepers():
            break
        await asyncio.sleep(0.1)
    assert not sleepers()
