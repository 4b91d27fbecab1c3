"""One browser of the pool and what the pool knows about its use."""

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from playwright.async_api import Browser
from playwright.async_api import Error as PlaywrightError

from farm_agent.browser.chromium import browser_processes
from farm_agent.errors import TaskFailure
from farm_core.cancel import Interrupted, unless_set
from farm_core.task_errors import ErrorCode

log = logging.getLogger(__name__)

Result = TypeVar("Result")

BROWSER_WENT_AWAY = "the browser went away (its process crashed or was killed)"


@dataclass(eq=False)
class PooledBrowser:
    """One running browser: its process marker, tasks started on it and leases held now."""

    browser: Browser
    marker: str
    tasks_started: int = 0
    leases: int = 0
    idle_since: float = field(default_factory=time.monotonic)
    retiring: bool = False
    given_up: bool = False
    """Whether the pool gave the browser up to be killed (it stopped answering)."""
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the browser is given up or disconnects: the awaits of the tasks still on
    it end at once (`until_gone`) rather than wait out their time."""

    def __post_init__(self) -> None:
        # Playwright's own signal is a callback; tasks need something to await.
        self.browser.on("disconnected", lambda _: self.gone.set())

    @property
    def usable(self) -> bool:
        """Whether new tasks may start on it: not retiring and still connected."""
        return not self.retiring and self.browser.is_connected()

    @property
    def name(self) -> str:
        """The browser in a log line: its marker's start and its process."""
        pids = ", ".join(str(pid) for pid in browser_processes(self.marker)) or "gone"
        return f"{self.marker[:8]} (pid {pids})"

    def give_up(self) -> None:
        """Marks the browser given up: it takes no task, and the tasks on it end now."""
        self.retiring = True
        self.given_up = True
        self.gone.set()

    async def until_gone(self, work: Awaitable[Result]) -> Result:
        """Awaits `work`; BROWSER_CRASHED at once if the browser is given up or disconnects.

        Playwright does not always answer a call whose browser went away: a new page
        still opening when its browser disconnects waits for ever, and a stopped
        browser (SIGSTOP, a frozen host) answers nothing until it is killed.
        """
        try:
            return await unless_set(work, self.gone, f"a task's call on browser {self.marker[:8]}")
        except Interrupted:
            if self.given_up:
                raise TaskFailure(
                    ErrorCode.BROWSER_CRASHED,
                    "the browser stopped answering and the agent killed it (its health check: "
                    "a context could not be closed or reset in time, or a probe page did not run)",
                ) from None
            raise TaskFailure(ErrorCode.BROWSER_CRASHED, BROWSER_WENT_AWAY) from None

    def kill(self) -> None:
        """Kills the browser's process (it stopped answering); tasks still on it then end."""
        self.give_up()
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
