"""Probes a browser a task timed out on, and gives it up when it no longer does work.

A browser can stay connected and answer the browser-level calls (a context opens and
closes) while none of its pages run: its renderers gone or never coming up. Every task
on it then waits out its whole time and fails TIMEOUT, and nothing else notices. So
after a task on a browser ends TIMEOUT, or a warm context's reset on it overruns its
bound, a throwaway context's page is asked for `1` within a short bound; a browser
whose probe fails is given up (killed, its running tasks ended BROWSER_CRASHED) and
the pool starts another.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable

from playwright.async_api import Browser
from playwright.async_api import Error as PlaywrightError

from farm_agent import metrics
from farm_agent.browser.pooled import PooledBrowser
from farm_agent.errors import TaskFailure
from farm_core.task_errors import ErrorCode

log = logging.getLogger(__name__)

GiveUp = Callable[[PooledBrowser, str], Awaitable[None]]

TASK_TIMED_OUT = "a task on it timed out"


async def probe(browser: Browser, seconds: float) -> str | None:
    """Why `browser` does no work (a new page cannot evaluate `1` in `seconds`); None if it does."""
    context = None
    try:
        async with asyncio.timeout(seconds):
            context = await browser.new_context()
            page = await context.new_page()
            await page.evaluate("1")
    except TimeoutError:
        return f"a probe page did not evaluate 1 within {seconds:g} s"
    except PlaywrightError as error:
        return f"a probe page failed: {error.message}"
    finally:
        if context is not None:
            # The probe's own context, bounded too: a browser that hangs is given up anyway.
            with contextlib.suppress(PlaywrightError, TimeoutError):
                async with asyncio.timeout(seconds):
                    await context.close()
    return None


class BrowserHealth:
    """Probes suspected browsers, one probe per browser at a time, in the background."""

    def __init__(self, give_up: GiveUp, probe_seconds: float) -> None:
        self._give_up = give_up
        self._seconds = probe_seconds
        self._probes: dict[PooledBrowser, asyncio.Task[None]] = {}

    def after_failure(self, failure: TaskFailure, used: Iterable[PooledBrowser]) -> None:
        """Suspects the browsers a task ran on when it ended TIMEOUT.

        A task that timed out before it got a browser suspects none: probing the
        others would only open more contexts on browsers that are busy already.
        """
        if failure.code is ErrorCode.TIMEOUT:
            for pooled in used:
                self.suspect(pooled, TASK_TIMED_OUT)

    def suspect(self, pooled: PooledBrowser, because: str) -> None:
        """Probes `pooled` (`because` says why) unless it is gone or being probed."""
        if pooled.gone.is_set() or pooled in self._probes:
            return
        task = asyncio.create_task(self._check(pooled, because), name="browser-probe")
        self._probes[pooled] = task
        task.add_done_callback(lambda _: self._probes.pop(pooled, None))

    async def probes_done(self) -> None:
        """Waits until no probe runs."""
        if self._probes:
            await asyncio.wait(set(self._probes.values()))

    async def close(self) -> None:
        """Stops the probes running (the pool is closing)."""
        probes = list(self._probes.values())
        for task in probes:
            task.cancel()
        for task in probes:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _check(self, pooled: PooledBrowser, because: str) -> None:
        why = await probe(pooled.browser, self._seconds)
        if pooled.gone.is_set():
            return
        metrics.browser_probes_total.labels(outcome="failed" if why else "passed").inc()
        if why is None:
            log.debug("browser %s answered its probe (%s)", pooled.name, because)
            return
        await self._give_up(pooled, f"{because} and {why}")
