"""Warm browser contexts: a context and its page kept per tenant, cleared between tasks.

A warm context serves one task at a time, of the tenant (and context options) it was
opened for, and never another tenant's. After each task it is reset (`reset_context`):
whatever the reset cannot do in time, or any task that failed in it, closes the
context instead, so a context is reused only after a reset that went through. The
agent keeps at most `warm_contexts` of them; to make room the least recently used
idle one is closed, and one idle for `browser_idle_seconds` is closed too. A reset
that overruns its bound has the context's browser probed (`suspect`): a task waiting
for that context times out before it gets a browser, so it probes none. A warm
context's browser is leased only while a task runs in it, so the pool still recycles
and closes browsers; a context whose browser went away is dropped when next taken.
"""

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from opentelemetry import trace
from playwright.async_api import BrowserContext, CDPSession, Page, Request
from playwright.async_api import Error as PlaywrightError

from farm_agent import metrics
from farm_agent.browser.memory import MemoryPressure
from farm_agent.browser.pooled import PooledBrowser
from farm_agent.browser.reset import KeptPage, ResetFailed, note_origin, reset_context
from farm_agent.egress.proxy import EgressProxy
from farm_agent.egress.session import EgressSession
from farm_agent.errors import Stage, failures_as
from farm_agent.settings import AgentSettings
from farm_core.tracing import tracer

log = logging.getLogger(__name__)

MAX_RESET_WAITS = 3
"""Resets a task waits out for a context of its tenant before it opens another."""

LEAVE_SHARE = 0.5
"""Share of the close timeout the kept page gets to reach about:blank before it is replaced."""

OnBrowser = Callable[[PooledBrowser], None]
"""Told the browser a leased warm context runs on (the task's, for the probe after a timeout)."""

Suspect = Callable[[PooledBrowser, str], None]
"""Told a browser to probe, and why (`BrowserHealth.suspect`)."""


class ContextSource(Protocol):
    """What warm contexts need of the browser pool."""

    @property
    def egress(self) -> EgressProxy:
        """The egress guard the contexts' listeners belong to."""
        ...

    async def open_context(
        self, options: Mapping[str, Any]
    ) -> tuple[PooledBrowser, BrowserContext]:
        """A new context on a leased browser."""
        ...

    async def lease_again(self, pooled: PooledBrowser) -> bool:
        """Leases `pooled` for one more task; False if it may take none."""
        ...

    async def release(self, pooled: PooledBrowser) -> None:
        """Ends one lease of `pooled`."""
        ...

    async def close_context(self, pooled: PooledBrowser, context: BrowserContext) -> None:
        """Closes `context` in bounded time."""
        ...


@dataclass(eq=False)
class WarmContext:
    """One kept context with its page, its egress listener and the origins its tasks reached."""

    tenant: str
    options_key: str
    pooled: PooledBrowser
    context: BrowserContext
    kept: KeptPage
    egress: EgressSession
    origins: set[str] = field(default_factory=set)
    busy: bool = False
    # The reset after its last task, while it runs: the context is busy until it ends.
    resetting: "asyncio.Task[None] | None" = None
    tasks: int = 0
    last_used: float = field(default_factory=time.monotonic)

    @property
    def page(self) -> Page:
        """The page tasks run on (the reset may replace it)."""
        return self.kept.page

    @property
    def cdp(self) -> CDPSession:
        """The CDP session of `page`."""
        return self.kept.cdp

    def note_request(self, request: Request) -> None:
        """Notes the origin of a request of the context's, to be cleared at the reset."""
        note_origin(self.origins, request.url)

    @property
    def alive(self) -> bool:
        """Whether its browser and page still run."""
        return self.pooled.browser.is_connected() and not self.page.is_closed()


class WarmContexts:
    """The agent's warm contexts, at most `warm_contexts`, handed out one task at a time."""

    def __init__(self, source: ContextSource, settings: AgentSettings, suspect: Suspect) -> None:
        self._source = source
        self._settings = settings
        self._suspect = suspect
        self._contexts: list[WarmContext] = []
        self._lock = asyncio.Lock()
        self._resets: set[asyncio.Task[None]] = set()
        self.memory = MemoryPressure(settings.memory_limit_bytes, settings.memory_trim_percent)

    @property
    def kept(self) -> list[WarmContext]:
        """The warm contexts kept now, idle or busy."""
        return list(self._contexts)

    @contextlib.asynccontextmanager
    async def lease(
        self,
        tenant: str,
        options: Mapping[str, Any],
        label: str,
        on_browser: OnBrowser = lambda pooled: None,
    ) -> AsyncIterator[WarmContext | None]:
        """A warm context of `tenant` with `options` for one task; None when there is no room.

        `on_browser` learns the context's browser as soon as the task has a context on it,
        before a new context's page is opened: a task that times out then ran on it.
        The context is reset when the block ends, in the background, so that the task's
        result need not wait for it; one whose task raised, or whose reset failed, is
        closed instead. A context being reset is handed out only once its reset is done.
        """
        with tracer().start_as_current_span("browser.acquire") as span:
            warm = await self._take(tenant, options, label, on_browser)
            span.set_attribute("farm.warm", warm is not None)
        if warm is None:
            metrics.warm_context_uses_total.labels(outcome="fresh").inc()
            yield None
            return
        # The egress guard's decisions belong to the task's span, not to the acquire.
        warm.egress.span = trace.get_current_span()
        succeeded = False
        try:
            yield warm
            succeeded = True
        finally:
            await self._give_back(warm, succeeded)

    async def close_idle(self, idle_seconds: float) -> None:
        """Closes the contexts no task has used for `idle_seconds` (they hold memory)."""
        now = time.monotonic()
        async with self._lock:
            stale = [
                warm
                for warm in self._contexts
                if not warm.busy and now - warm.last_used >= idle_seconds
            ]
            for warm in stale:
                self._forget(warm)
        for warm in stale:
            metrics.warm_context_uses_total.labels(outcome="trimmed").inc()
            await self._close(warm)

    async def trim_for_memory(self) -> None:
        """Closes idle contexts, least recently used first, while memory is under pressure."""
        while await self.memory.pressed():
            async with self._lock:
                idle = [warm for warm in self._contexts if not warm.busy]
                if not idle:
                    return
                oldest = min(idle, key=lambda warm: warm.last_used)
                self._forget(oldest)
            metrics.warm_context_uses_total.labels(outcome="memory").inc()
            await self._close(oldest)

    async def resets_done(self) -> None:
        """Waits until no reset runs."""
        if self._resets:
            await asyncio.wait(set(self._resets))

    async def close(self) -> None:
        """Closes every warm context (the pool is closing), once their resets have ended."""
        await self.resets_done()
        async with self._lock:
            contexts, self._contexts = self._contexts, []
        for warm in contexts:
            await self._close(warm)
        metrics.warm_contexts.set(0)

    async def _take(
        self, tenant: str, options: Mapping[str, Any], label: str, on_browser: OnBrowser
    ) -> WarmContext | None:
        key = _options_key(options)
        for _ in range(MAX_RESET_WAITS + 1):
            async with self._lock:
                warm = await self._reuse(tenant, key, label)
                if warm is not None:
                    on_browser(warm.pooled)
                    return warm
                resetting = self._resetting(tenant, key)
                if resetting is None:
                    return await self._open_if_room(tenant, key, options, label, on_browser)
            # Waiting out a reset is cheaper than opening another context.
            await asyncio.wait({resetting})
        async with self._lock:
            return await self._open_if_room(tenant, key, options, label, on_browser)

    async def _reuse(self, tenant: str, key: str, label: str) -> WarmContext | None:
        """An idle context of `tenant` with these options that still answers, leased; or None."""
        while (warm := self._idle(tenant, key)) is not None:
            warm.busy = True
            if await self._answers(warm) and await self._source.lease_again(warm.pooled):
                await self._source.egress.hand_over(warm.egress, label)
                metrics.warm_context_uses_total.labels(outcome="reused").inc()
                return warm
            self._forget(warm)
            await self._close(warm)
        return None

    def _resetting(self, tenant: str, key: str) -> "asyncio.Task[None] | None":
        """The reset of a context of `tenant` with these options, if one is running."""
        for warm in self._contexts:
            fits = warm.tenant == tenant and warm.options_key == key
            if fits and warm.resetting is not None and not warm.resetting.done():
                return warm.resetting
        return None

    async def _open_if_room(
        self,
        tenant: str,
        key: str,
        options: Mapping[str, Any],
        label: str,
        on_browser: OnBrowser,
    ) -> WarmContext | None:
        """A new warm context, after trimming the oldest idle one if needed.

        None if all are busy, or if memory is under pressure: the task then runs in a
        context of its own, closed after it.
        """
        if await self.memory.pressed():
            return None
        if len(self._contexts) >= self._settings.warm_contexts and not await self._trim():
            return None
        warm = await self._open(tenant, key, options, label, on_browser)
        metrics.warm_context_uses_total.labels(outcome="opened").inc()
        return warm

    async def _answers(self, warm: WarmContext) -> bool:
        """Whether the context's page still answers (its browser may have died since)."""
        if not warm.alive:
            return False
        try:
            async with asyncio.timeout(self._settings.close_timeout_seconds):
                await warm.cdp.send("Runtime.evaluate", {"expression": "0"})
        except (PlaywrightError, TimeoutError):
            return False
        return True

    def _idle(self, tenant: str, key: str) -> WarmContext | None:
        """The most recently used idle context of `tenant` with these options, if any."""
        fitting = [
            warm
            for warm in self._contexts
            if not warm.busy and warm.tenant == tenant and warm.options_key == key
        ]
        return max(fitting, key=lambda warm: warm.last_used, default=None)

    async def _trim(self) -> bool:
        """Closes the least recently used idle context; False when every one is busy."""
        idle = [warm for warm in self._contexts if not warm.busy]
        if not idle:
            return False
        oldest = min(idle, key=lambda warm: warm.last_used)
        self._forget(oldest)
        metrics.warm_context_uses_total.labels(outcome="trimmed").inc()
        await self._close(oldest)
        return True

    async def _open(
        self,
        tenant: str,
        key: str,
        options: Mapping[str, Any],
        label: str,
        on_browser: OnBrowser,
    ) -> WarmContext:
        egress = await self._source.egress.open_session(label)
        try:
            pooled, context = await self._source.open_context({**options, "proxy": egress.proxy})
        except BaseException:
            await self._source.egress.close_session(egress)
            raise
        on_browser(pooled)
        try:
            with failures_as(Stage.CAPTURE, "opening a warm context's page"):
                # Playwright never answers a page still opening when its browser goes away.
                kept = await pooled.until_gone(KeptPage.open(context))
        except BaseException:
            await self._source.close_context(pooled, context)
            await self._source.release(pooled)
            await self._source.egress.close_session(egress)
            raise
        warm = WarmContext(tenant, key, pooled, context, kept, egress, busy=True)
        context.on("request", warm.note_request)
        self._contexts.append(warm)
        metrics.warm_contexts.set(len(self._contexts))
        return warm

    async def _give_back(self, warm: WarmContext, succeeded: bool) -> None:
        """After a task: starts the context's reset, or closes it if the task failed."""
        warm.tasks += 1
        if succeeded:
            warm.resetting = asyncio.create_task(self._reset_and_keep(warm))
            self._resets.add(warm.resetting)
            warm.resetting.add_done_callback(self._resets.discard)
            return
        await self._source.release(warm.pooled)
        async with self._lock:
            self._forget(warm)
        metrics.warm_context_uses_total.labels(outcome="failed_task").inc()
        await self._close(warm)

    async def _reset_and_keep(self, warm: WarmContext) -> None:
        """Resets the context and makes it idle; closes it if the reset fails."""
        reset = await self._reset(warm)
        await self._source.release(warm.pooled)
        async with self._lock:
            if reset and warm in self._contexts:
                warm.busy = False
                warm.last_used = time.monotonic()
                return
            self._forget(warm)
        metrics.warm_context_uses_total.labels(outcome="reset_failed").inc()
        await self._close(warm)

    async def _reset(self, warm: WarmContext) -> bool:
        seconds = self._settings.close_timeout_seconds
        leave_seconds = seconds * LEAVE_SHARE
        bound = seconds + leave_seconds
        try:
            # The rest of the reset (a page replaced, the state cleared) gets a whole
            # close timeout after the leave's share: on a loaded machine replacing a
            # spinning page alone took longer than the half that was left of one.
            async with asyncio.timeout(bound):
                warm.kept = await reset_context(
                    warm.context, warm.kept, warm.origins, leave_seconds
                )
        except (PlaywrightError, ResetFailed, TimeoutError) as error:
            log.warning("a warm context could not be reset; it is closed instead: %r", error)
            if isinstance(error, TimeoutError):
                # Overrun, not refused: its browser's pages may no longer run.
                self._suspect(warm.pooled, f"a warm context's reset took over {bound:g} s")
            return False
        except Exception:
            # A bug; the context is closed all the same, never reused unreset.
            log.exception("resetting a warm context failed unexpectedly; it is closed instead")
            return False
        return True

    def _forget(self, warm: WarmContext) -> None:
        if warm in self._contexts:
            self._contexts.remove(warm)
        metrics.warm_contexts.set(len(self._contexts))

    async def _close(self, warm: WarmContext) -> None:
        """Closes a context taken out of the list, and its egress listener."""
        try:
            await self._source.close_context(warm.pooled, warm.context)
        finally:
            await self._source.egress.close_session(warm.egress)


def _options_key(options: Mapping[str, Any]) -> str:
    """The context options as a key: tasks share a warm context only with the same ones."""
    return json.dumps({name: options[name] for name in sorted(options) if name != "proxy"})
