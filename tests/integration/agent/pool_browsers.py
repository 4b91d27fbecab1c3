"""A pool's Chromium in the agent's tests: its processes, found and frozen through /proc,
and a task for its test page."""

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from farm.tasks.v1 import tasks_pb2
from farm_agent.metrics import process_tree
from tests.pages import Site


def browser_pids(scratch: Path) -> list[int]:
    """PIDs of the main Chromium processes whose profiles live under `scratch`."""
    found = []
    for pid in process_tree(os.getpid()):
        try:
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        is_main = not any(argument.startswith(b"--type=") for argument in arguments)
        if is_main and any(
            argument.startswith(f"--user-data-dir={scratch}".encode()) for argument in arguments
        ):
            found.append(pid)
    return found


def page_task(site: Site, **fields: Any) -> tasks_pb2.TaskSpec:
    """A task that opens the test site's /page, with `fields` of its spec."""
    return tasks_pb2.TaskSpec(url=site.url("/page"), timeout_ms=10_000, **fields)


def renderer_pids(browser_pid: int) -> set[int]:
    """The renderer processes of the browser `browser_pid` (found by walking its tree)."""
    found = set()
    for pid in process_tree(browser_pid) - {browser_pid}:
        with contextlib.suppress(OSError):
            if b"--type=renderer" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.add(pid)
    return found


@contextlib.asynccontextmanager
async def renderers_frozen_as_they_start(browser_pid: int) -> AsyncIterator[set[int]]:
    """Stops (SIGSTOP) the browser's renderers as they start, as if they never came up."""
    frozen: set[int] = set()

    async def freeze() -> None:
        while True:
            for renderer in renderer_pids(browser_pid) - frozen:
                os.kill(renderer, signal.SIGSTOP)
                frozen.add(renderer)
            await asyncio.sleep(0.01)

    freezer = asyncio.create_task(freeze())
    try:
        yield frozen
    finally:
        freezer.cancel()
        for renderer in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(renderer, signal.SIGCONT)
