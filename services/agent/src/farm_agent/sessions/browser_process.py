"""A session browser's process: started without Python in the fork, ended as a whole group.

uvloop's spawn (asyncio.create_subprocess_exec on the agent's loop) runs Python's
after-fork hooks in the forked child before it execs (uvloop issue 749), and Python
code in a fork of the agent's threads crashes now and then (a segfault in
threading's after-fork hook was seen): the browser then never starts. CPython's
subprocess runs no Python between fork and exec (vfork on Linux), so the browser is
started by it, in a thread, and awaited from the loop through its pidfd.
"""

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Sequence
from typing import Any

import psutil

log = logging.getLogger(__name__)


class BrowserProcess:
    """A child started by CPython's subprocess: its pid, its exit status, a wait for it."""

    def __init__(self, popen: "subprocess.Popen[bytes]") -> None:
        self._popen = popen

    @property
    def pid(self) -> int:
        """The child's process id (its group's, too: it leads a session of its own)."""
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        """The child's exit status once it has ended (it is reaped then), else None."""
        return self._popen.poll()

    def kill(self) -> None:
        """SIGKILL to the child (not reaped here: wait() or returncode does that)."""
        self._popen.kill()

    async def wait(self) -> int:
        """Waits for the child to end, without a thread: its pidfd turns readable then."""
        if (code := self._popen.poll()) is not None:
            return code
        loop = asyncio.get_running_loop()
        # Not reaped yet (only this object reaps it), so its pid is still the child's.
        pidfd = os.pidfd_open(self._popen.pid)
        try:
            ended: asyncio.Future[None] = loop.create_future()

            def readable() -> None:
                if not ended.done():
                    ended.set_result(None)

            loop.add_reader(pidfd, readable)
            try:
                await ended
            finally:
                loop.remove_reader(pidfd)
        finally:
            os.close(pidfd)
        return self._popen.wait()


async def start_process(command: Sequence[str], **options: Any) -> BrowserProcess:
    """Starts `command` with subprocess.Popen `options` in a thread; see the module's docstring.

    A call cancelled while the thread starts the child still gets it ended (SIGKILL to
    its group) and reaped, so no browser is left behind.
    """
    starting = asyncio.ensure_future(asyncio.to_thread(_popen, command, options))
    try:
        return BrowserProcess(await asyncio.shield(starting))
    except asyncio.CancelledError:
        starting.add_done_callback(_end_unwanted)
        raise


def _popen(command: Sequence[str], options: dict[str, Any]) -> "subprocess.Popen[bytes]":
    return subprocess.Popen(command, **options)


def _end_unwanted(starting: "asyncio.Future[subprocess.Popen[bytes]]") -> None:
    """Kills and reaps the child a cancelled start_process went on to start."""
    if starting.cancelled() or starting.exception() is not None:
        return
    popen = starting.result()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(popen.pid, signal.SIGKILL)
    asyncio.get_running_loop().run_in_executor(None, popen.wait)


async def end_process(process: BrowserProcess, timeout_seconds: float) -> None:
    """SIGTERM to the browser's process group, SIGKILL after the timeout.

    Returns once no process of the group runs: Chromium's helpers outlive the browser
    process by a moment and would still write into its profile folder.
    """
    if process.returncode is None:
        for signum in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signum)
            try:
                async with asyncio.timeout(timeout_seconds):
                    await process.wait()
                break
            except TimeoutError:
                log.warning(
                    "a session browser (pid %d) did not end on signal %d", process.pid, signum
                )
    await _group_gone(process.pid, timeout_seconds)


async def _group_gone(group: int, timeout_seconds: float) -> None:
    """Waits until process group `group` has no running process; SIGKILLs it past the timeout."""
    deadline = asyncio.get_running_loop().time() + timeout_seconds
    while await asyncio.to_thread(_group_runs, group):
        if asyncio.get_running_loop().time() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            return
        await asyncio.sleep(0.05)


def _group_runs(group: int) -> bool:
    """Whether a process of group `group` runs (zombies waiting to be reaped do not count)."""
    for process in psutil.process_iter(["pid", "status"]):
        try:
            if process.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(process.pid) == group:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False
