"""Ending a session browser's process group: SIGTERM, then SIGKILL, until none of it runs."""

import asyncio
import contextlib
import logging
import os
import signal

import psutil

from farm_agent.child_process import ChildProcess

log = logging.getLogger(__name__)


async def end_process(process: ChildProcess, timeout_seconds: float) -> None:
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
