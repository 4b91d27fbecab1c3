"""How the agent starts Playwright's driver (node): its environment, and its idle collection.

The driver's TMPDIR is the agent's scratch directory (it makes Chromium's profile
directories there). Its node runs with a small young generation, and loads
`driver_gc.cjs`, which gives back the heap its last tasks left once it has been idle
for `driver_idle_gc_seconds`. With `restart_driver` the pool restarts it (`Driver`)
when it replaces its last task browser with nothing else open on it
(docs/performance.md "Agent memory"). Node is started by CPython's subprocess, not
the loop's spawn (`driver_transport`).
"""

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from playwright.async_api import Playwright, async_playwright

from farm_agent.browser.driver_transport import forkless_driver
from farm_agent.browser.pooled import PooledBrowser
from farm_agent.settings import AgentSettings

log = logging.getLogger(__name__)

IDLE_COLLECTOR = Path(__file__).with_name("driver_gc.cjs")
# A small young generation keeps node about 16 MiB smaller when idle; --expose-gc lets
# the idle collector call a collection.
DRIVER_NODE_OPTIONS = ("--max-semi-space-size=1", "--expose-gc")
MMAP_THRESHOLD_BYTES = 128 * 1024


def driver_environment(settings: AgentSettings, scratch: Path) -> dict[str, str]:
    """The variables the driver starts with, on top of the agent's (NODE_OPTIONS extended)."""
    options = [os.environ.get("NODE_OPTIONS", ""), *DRIVER_NODE_OPTIONS]
    if settings.driver_idle_gc_seconds > 0:
        options.append(f'--require "{IDLE_COLLECTOR}"')
    return {
        "TMPDIR": str(scratch),
        "NODE_OPTIONS": " ".join(option for option in options if option),
        "FARM_DRIVER_IDLE_GC_MS": str(round(settings.driver_idle_gc_seconds * 1000)),
        # A fixed threshold (glibc raises its own up to 32 MiB as big blocks are freed)
        # keeps big buffers (screenshots) in mappings of their own, unmapped when freed,
        # instead of in malloc's heap, which keeps their pages after the collection.
        "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD_BYTES),
    }


@contextlib.contextmanager
def environment(variables: Mapping[str, str]) -> Iterator[None]:
    """Sets `variables` in os.environ for the block (Playwright's driver inherits it)."""
    previous = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


class Driver:
    """Playwright's driver (node), which the pool's and the sessions' browsers run through.

    Its node creeps over thousands of tasks (docs/performance.md "Agent memory"); with
    `restart_driver` the pool restarts it (`restart`) when it replaces its last task
    browser and nothing else is open on it: no other task browser and no session
    browser (`hold`).
    """

    def __init__(self, settings: AgentSettings, scratch: Path) -> None:
        self._settings = settings
        self._scratch = scratch
        self._playwright: Playwright | None = None
        self._lock = asyncio.Lock()
        self.holders = 0
        """Session browsers (spares included) launched through this driver and not closed."""
        self.restarts = 0

    @property
    def playwright(self) -> Playwright:
        """The running driver's Playwright."""
        if self._playwright is None:
            raise RuntimeError("Playwright's driver is not started")
        return self._playwright

    async def hold(self) -> Playwright:
        """The driver for a session browser: not restarted until `let_go`."""
        async with self._lock:  # not while a restart is under way
            self.holders += 1
            return self.playwright

    def let_go(self) -> None:
        """A browser launched on `hold`'s driver has closed."""
        self.holders -= 1

    def due_after(self, retired: PooledBrowser, task_browsers_left: int) -> bool:
        """Whether to restart with `retired`, a task browser just taken out of the pool.

        Only after a browser that served its tasks in full, with `restart_driver` on, and
        with neither another task browser nor a session browser open on the driver.
        """
        return (
            self._settings.restart_driver
            and task_browsers_left == 0
            and self.holders == 0
            and retired.tasks_started >= self._settings.tasks_per_browser
            and retired.browser.is_connected()
        )

    async def start(self) -> None:
        """Starts node with the driver's environment (`driver_environment`)."""
        self._playwright = await self._started()

    async def restart(self) -> bool:
        """A fresh driver in place of this one, unless a session browser holds it (False).

        The new one starts before the old one stops: whoever reads `playwright` meanwhile
        (a task looking up a device) finds one running.
        """
        async with self._lock:
            if self.holders or self._playwright is None:
                return False
            try:
                fresh = await self._started()
            except Exception:
                log.exception("a fresh Playwright driver did not start; the old one goes on")
                return False
            old, self._playwright = self._playwright, fresh
            self.restarts += 1
            await old.stop()
            return True

    async def stop(self) -> None:
        """Stops node (its browsers are closed first, by their owners)."""
        async with self._lock:  # after a restart under way, never during it
            if self._playwright is not None:
                playwright, self._playwright = self._playwright, None
                await playwright.stop()

    async def _started(self) -> Playwright:
        # Not the loop's spawn, which on uvloop runs Python in the fork (driver_transport).
        with environment(driver_environment(self._settings, self._scratch)), forkless_driver():
            return await async_playwright().start()
