"""One browser of the pool and what the pool knows about its use."""

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from playwright.async_api import Browser
from playwright.async_api import Error as PlaywrightError

from farm_agent.browser.chromium import browser_processes

log = logging.getLogger(__name__)


@dataclass(eq=False)
class PooledBrowser:
    """One running browser: its process marker, tasks started on it and leases held now."""

    browser: Browser
    marker: str
    tasks_started: int = 0
    leases: int = 0
    idle_since: float = field(default_factory=time.monotonic)
    retiring: bool = False
    killed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the pool gives the browser up to be killed (it stopped answering): the
    tasks still running on it end at once (PageGuard) rather than wait out their time."""

    @property
    def usable(self) -> bool:
        """Whether new tasks may start on it: not retiring and still connected."""
        return not self.retiring and self.browser.is_connected()

    @property
    def name(self) -> str:
        """The browser in a log line: its marker's start and its process."""
        pids = ", ".join(str(pid) for pid in browser_processes(self.marker)) or "gone"
        return f"{self.marker[:8]} (pid {pids})"

    def kill(self) -> None:
        """Kills the browser's process (it stopped answering); tasks still on it then end."""
        self.killed.set()
        for pid in browser_processes(self.marker):
            log.warning("killing browser process %d", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


async def close_quietly(closer: Callable[[], Awaitable[None]], what: str) -> None:
    """Closes a context or browser by `closer`; failing because its browser is gone is fine."""
    try:
        await closer()
    except PlaywrightError as error:
        # Closing what a crashed or killed browser held fails; nothing is left to free.
        log.debug("closing a %s failed: %s", what, error)
