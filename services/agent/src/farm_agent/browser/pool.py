"""A pool of headless Chromium browsers: a fresh context per task, or a warm one (`warm`)."""

import asyncio
import contextlib
import logging
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Playwright
from playwright.async_api import Error as PlaywrightError

from farm_agent import metrics
from farm_agent.browser.chromium import (
    MARKER_SWITCH,
    launch_task_browser,
    task_browser_arguments,
    task_browser_executable,
)
from farm_agent.browser.driver import Driver
from farm_agent.browser.health import BrowserHealth
from farm_agent.browser.pooled import PooledBrowser, close_quietly
from farm_agent.browser.scratch import prepare_scratch
from farm_agent.browser.temp_dirs import TempDirs
from farm_agent.browser.warm import WarmContexts
from farm_agent.egress.guarded_ports import GuardedPorts
from farm_agent.egress.proxy import EgressProxy
from farm_agent.errors import Stage, TaskFailure, failure_from
from farm_agent.settings import AgentSettings
from farm_core.egress.resolution import farm_policy
from farm_core.periodic import Periodic
from farm_core.task_errors import ErrorCode
from farm_core.tracing import tracer

log = logging.getLogger(__name__)

# Idle browsers are looked for every half idle time, and at least this often.
MAX_UPKEEP_INTERVAL_SECONDS = 5.0


class BrowserPool:
    """Runs between min and max browsers; hands out fresh contexts and recycles browsers.

    A browser is replaced after `tasks_per_browser` tasks or when it disconnects
    (crash, killed process); browsers above the minimum close after being idle for
    `browser_idle_seconds`. A browser that cannot close a task's context within
    `close_timeout_seconds` (a hung renderer), or that fails its probe after a task on
    it timed out or a warm context's reset on it overran (`health`), is killed and
    replaced. Chromium's profiles live in the agent's scratch directory, which is
    removed on close (and on start, after ending any browser an earlier run left
    there, with the temporary directories outside it that an earlier run recorded in
    `temp_dirs`). Every browser sends its requests through the pool's egress guard.
    `warm` keeps contexts per tenant across tasks (WarmContexts), on the pool's browsers.
    """

    def __init__(self, settings: AgentSettings) -> None:
        self._settings = settings
        self._executable = task_browser_executable(
            settings.headless_shell_path, settings.chromium_path
        )
        self._scratch = settings.scratch_dir().resolve()
        self._browser_tmp = self._scratch
        self.temp_dirs = TempDirs(settings.temp_dir_records().resolve())
        self._driver = Driver(settings, self._scratch)
        self._browsers: list[PooledBrowser] = []
        self._changed = asyncio.Condition()
        self._upkeep = Periodic(
            "browser-pool-upkeep",
            self._close_idle,
            min(settings.browser_idle_seconds / 2, MAX_UPKEEP_INTERVAL_SECONDS),
            survives=(TaskFailure,),
        )
        self._closed = False
        self._egress: EgressProxy | None = None
        # A probe's new page gets more than a close: on a loaded machine one takes a while.
        self.health = BrowserHealth(self.give_up, 2 * settings.close_timeout_seconds)
        self.warm = WarmContexts(self, settings, self.health.suspect)

    @property
    def scratch_dir(self) -> Path:
        """Where Chromium's profiles and temporary files go."""
        return self._scratch

    @property
    def devices(self) -> Mapping[str, Mapping[str, Any]]:
        """Playwright's device descriptors by name, e.g. "iPhone 13"."""
        return self._driver.playwright.devices

    @property
    def playwright(self) -> Playwright:
        """The running driver's Playwright."""
        return self._driver.playwright

    @property
    def driver(self) -> Driver:
        """Playwright's driver; a session browser holds it (`Driver.hold`)."""
        return self._driver

    @property
    def egress(self) -> EgressProxy:
        """The egress guard the browsers' requests go through."""
        if self._egress is None:
            raise RuntimeError("the browser pool is not started")
        return self._egress

    @property
    def browsers(self) -> list[PooledBrowser]:
        """The browsers running now."""
        return list(self._browsers)

    @property
    def running_browsers(self) -> int:
        """Browsers running now."""
        return len(self._browsers)

    async def start(self) -> None:
        """Starts the egress guard, Playwright's driver and the minimum number of browsers.

        A start that fails part way closes what it had opened.
        """
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise

    async def _start(self) -> None:
        policy = await farm_policy(
            self._settings.allow,
            self._settings.farm_services(),
            timeout_seconds=self._settings.egress_connect_seconds,
        )
        self._egress = EgressProxy(
            policy,
            connect_timeout_seconds=self._settings.egress_connect_seconds,
            listen_host=self._settings.egress_host,
            guarded_ports=GuardedPorts(self._settings.guarded_ports_dir, self._settings.id),
        )
        await self._egress.start()
        self._browser_tmp = await prepare_scratch(
            self._scratch, self.temp_dirs, self._settings.close_timeout_seconds
        )
        await self._driver.start()
        async with self._changed:
            await self._top_up()
        self._upkeep.start()
        log.info(
            "browser pool started: %d browser(s), %s, scratch %s",
            len(self._browsers),
            self._executable,
            self._scratch,
        )

    @contextlib.asynccontextmanager
    async def new_context(
        self, **options: Any
    ) -> AsyncIterator[tuple[PooledBrowser, BrowserContext]]:
        """A fresh browser context with `options` (viewport, device...), closed afterwards.

        Handed over with the leased browser it runs in.
        """
        with tracer().start_as_current_span("browser.acquire"):
            pooled, context = await self.open_context(options)
        try:
            yield pooled, context
        finally:
            await self.close_context(pooled, context)
            await self.release(pooled)

    async def close(self) -> None:
        """Closes every browser and Playwright, and removes the scratch directory."""
        self._closed = True
        await self._upkeep.cancel()
        # Warm contexts first: a reset that overruns as they close starts a probe.
        await self.warm.close()
        await self.health.close()
        async with self._changed:
            browsers, self._browsers = self._browsers, []
            metrics.active_browsers.set(0)
            self._changed.notify_all()
        for pooled in browsers:
            await self._end_browser(pooled)
        await self._driver.stop()
        if self._egress is not None:
            await self._egress.close()
        await asyncio.to_thread(shutil.rmtree, self._scratch, True)
        if self._browser_tmp != self._scratch:
            await asyncio.to_thread(self.temp_dirs.remove, self._browser_tmp)
        await asyncio.to_thread(self.temp_dirs.forget_records)
        log.info("browser pool closed")

    async def close_context(self, pooled: PooledBrowser, context: BrowserContext) -> None:
        """Closes the context in bounded time; a browser that cannot is killed."""
        if pooled.gone.is_set():
            # Given up or disconnected: closing would only wait out the timeout, or fail.
            return
        seconds = self._settings.close_timeout_seconds
        try:
            async with asyncio.timeout(seconds):
                await close_quietly(context.close, "browser context")
        except TimeoutError:
            await self.give_up(pooled, f"a task's context did not close within {seconds:g} s")

    async def give_up(self, pooled: PooledBrowser, why: str) -> None:
        """Ends `pooled`, which stopped working: its tasks end now; a lease starts another."""
        if pooled.given_up:
            return
        log.warning(
            "giving up browser %s after %d task(s): %s", pooled.name, pooled.tasks_started, why
        )
        pooled.give_up()
        metrics.browsers_killed_total.inc()
        await self._end_browser(pooled)
        async with self._changed:
            if pooled.leases == 0 and pooled in self._browsers:
                self._drop(pooled)
            self._changed.notify_all()

    async def _end_browser(self, pooled: PooledBrowser) -> None:
        """Ends a browser: closed if it answers in time, else its process is killed."""
        try:
            async with asyncio.timeout(self._settings.close_timeout_seconds):
                await close_quietly(pooled.browser.close, "browser")
            return
        except TimeoutError:
            pass
        pooled.kill()

    async def open_context(
        self, options: Mapping[str, Any]
    ) -> tuple[PooledBrowser, BrowserContext]:
        """A new context on a leased browser; a browser found dead is retired and another tried.

        The caller ends the lease with `release` and the context with `close_context`.
        """
        for _ in range(2):
            pooled = await self._lease()
            try:
                return pooled, await pooled.browser.new_context(**options)
            except asyncio.CancelledError:
                # The task's time ran out while its context opened: a lease kept would keep
                # the browser from ever closing (and, at max_browsers, the pool from growing).
                await self.release(pooled)
                raise
            except PlaywrightError as error:
                failure = failure_from(error, Stage.CAPTURE, "browser context")
                dead = failure.code is ErrorCode.BROWSER_CRASHED
                if dead:
                    pooled.retiring = True
                await self.release(pooled)
                if not dead:
                    raise failure from error
                log.warning("a browser was found dead when a task started; trying another")
        raise TaskFailure(ErrorCode.BROWSER_CRASHED, "browsers keep dying as tasks start")

    async def _lease(self) -> PooledBrowser:
        async with self._changed:
            while True:
                if self._closed:
                    raise TaskFailure(ErrorCode.INTERNAL, "the agent is shutting down")
                self._forget_disconnected()
                pooled = await self._choose()
                if pooled is not None:
                    break
                await self._changed.wait()
            pooled.leases += 1
            pooled.tasks_started += 1
            if pooled.tasks_started >= self._settings.tasks_per_browser:
                pooled.retiring = True
            return pooled

    async def _choose(self) -> PooledBrowser | None:
        """An idle browser, else a new one if below max, else the least busy; None: wait."""
        usable = [pooled for pooled in self._browsers if pooled.usable]
        idle = [pooled for pooled in usable if pooled.leases == 0]
        if idle:
            return idle[0]
        if len(self._browsers) < self._settings.max_browsers:
            return await self._launch()
        return min(usable, key=lambda pooled: pooled.leases, default=None)

    async def lease_again(self, pooled: PooledBrowser) -> bool:
        """Leases `pooled` for one more task (a warm context's); False if it may take none."""
        async with self._changed:
            if self._closed or not pooled.usable or pooled not in self._browsers:
                return False
            pooled.leases += 1
            pooled.tasks_started += 1
            if pooled.tasks_started >= self._settings.tasks_per_browser:
                pooled.retiring = True
            return True

    async def release(self, pooled: PooledBrowser) -> None:
        """Ends one lease of `pooled`; a retiring browser with no lease left is closed.

        A browser replaced after `tasks_per_browser` tasks that leaves nothing open on
        the driver takes the driver with it: a fresh one serves the next browser.
        """
        async with self._changed:
            pooled.leases -= 1
            pooled.idle_since = time.monotonic()
            retire = pooled.leases == 0 and not pooled.usable and pooled in self._browsers
            if retire:
                self._drop(pooled)
                if not self._closed and self._driver.due_after(pooled, len(self._browsers)):
                    # Under the lock: no browser launches until the fresh one runs.
                    await self._end_browser(pooled)
                    # Shielded: a task cancelled in its release leaves no half-started node.
                    if await asyncio.shield(self._driver.restart()):
                        log.info("driver restarted after %d task(s)", pooled.tasks_started)
                    self._changed.notify_all()
                    return
            self._changed.notify_all()
        if retire:
            log.info(
                "browser retired after %d task(s)%s",
                pooled.tasks_started,
                "" if pooled.browser.is_connected() else " (disconnected)",
            )
            await self._end_browser(pooled)

    async def _launch(self) -> PooledBrowser:
        marker = uuid.uuid4().hex
        arguments = [
            *task_browser_arguments(self._settings.page_heap_mb),
            *self.egress.launch_arguments(),
            f"{MARKER_SWITCH}={marker}",
        ]
        browser = await launch_task_browser(
            self._driver.playwright, self._executable, arguments, self._browser_tmp, self._scratch
        )
        pooled = PooledBrowser(browser, marker)
        browser.on("disconnected", lambda _: self._on_disconnected(pooled))
        self._browsers.append(pooled)
        metrics.active_browsers.set(len(self._browsers))
        log.debug("browser launched (%d running)", len(self._browsers))
        return pooled

    def _on_disconnected(self, pooled: PooledBrowser) -> None:
        if pooled in self._browsers and not self._closed:
            log.warning(
                "a browser disconnected after %d task(s); it will be replaced",
                pooled.tasks_started,
            )
            if pooled.leases == 0:
                self._drop(pooled)

    def _forget_disconnected(self) -> None:
        for pooled in list(self._browsers):
            if not pooled.browser.is_connected() and pooled.leases == 0:
                self._drop(pooled)

    def _drop(self, pooled: PooledBrowser) -> None:
        self._browsers.remove(pooled)
        metrics.active_browsers.set(len(self._browsers))

    async def _top_up(self) -> None:
        """Launches browsers until `min_browsers` are usable; the caller holds the lock."""
        while (
            sum(pooled.usable for pooled in self._browsers) < self._settings.min_browsers
            and len(self._browsers) < self._settings.max_browsers
        ):
            await self._launch()

    async def _close_idle(self) -> None:
        """Closes warm contexts idle too long or under memory pressure, and idle browsers.

        Browsers close after `browser_idle_seconds` idle, down to the minimum.
        """
        await self.warm.close_idle(self._settings.browser_idle_seconds)
        await self.warm.trim_for_memory()
        now = time.monotonic()
        to_close: list[PooledBrowser] = []
        async with self._changed:
            self._forget_disconnected()
            for pooled in list(self._browsers):
                idle_for = now - pooled.idle_since
                above_min = len(self._browsers) > self._settings.min_browsers
                idle_too_long = idle_for >= self._settings.browser_idle_seconds
                if above_min and pooled.leases == 0 and idle_too_long:
                    self._drop(pooled)
                    to_close.append(pooled)
            await self._top_up()
        for pooled in to_close:
            log.info("closing a browser idle for %.0f s", now - pooled.idle_since)
            await self._end_browser(pooled)
