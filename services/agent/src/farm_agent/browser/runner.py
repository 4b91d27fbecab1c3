"""Runs one TaskSpec in a fresh or warm browser context: navigate, run steps, do the action."""

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal
from urllib.parse import urlsplit

from playwright.async_api import Page, Response

from farm.tasks.v1 import tasks_pb2
from farm_agent import metrics
from farm_agent.audits.observer import PageObserver
from farm_agent.browser.actions import Capture, run_action
from farm_agent.browser.collect import collect, observer_for
from farm_agent.browser.history import history_field, history_target
from farm_agent.browser.isolation import choose_isolation
from farm_agent.browser.navigation import MainFrameNavigation, shown_url
from farm_agent.browser.observers import ContextObserver
from farm_agent.browser.page_guard import CONTEXT_OPTIONS, PageGuard
from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.pooled import PooledBrowser
from farm_agent.browser.setup import context_options, prepare_context
from farm_agent.browser.steps import run_step
from farm_agent.browser.warm import WarmContext
from farm_agent.egress.session import EgressSession
from farm_agent.errors import Stage, TaskFailure, failures_as, http_error
from farm_agent.media.recorder import RecordingLimits
from farm_agent.media.task_screencast import TaskScreencast
from farm_agent.saved.profiles import ProfileToSave, load_profile, read_profile
from farm_agent.settings import AgentSettings
from farm_agent.traces import action_attributes, step_attributes
from farm_core.task_defaults import (
    ACTIONS,
    DEFAULT_TIMEOUT_MS,
    DEFAULT_VIEWPORT,
    DEFAULT_WAIT_UNTIL,
)
from farm_core.task_errors import ErrorCode
from farm_core.task_limits import attempt_margin_ms
from farm_core.tracing import tracer

log = logging.getLogger(__name__)

WaitUntil = Literal["load", "domcontentloaded", "networkidle"]
_WAIT_UNTIL: dict[int, WaitUntil] = {
    tasks_pb2.WAIT_UNTIL_LOAD: "load",
    tasks_pb2.WAIT_UNTIL_DOMCONTENTLOADED: "domcontentloaded",
    tasks_pb2.WAIT_UNTIL_NETWORKIDLE: "networkidle",
}


class Budget:
    """The time left in one attempt, handed to Playwright so its own waits end first.

    Playwright's waits get the time left less a margin, so a missing element is
    reported as SELECTOR_NOT_FOUND rather than as the attempt's TIMEOUT. The failure
    the spec's work ended with is kept: when the attempt's time runs out later, while
    its context is being closed, that failure, not TIMEOUT, is the attempt's outcome.
    """

    def __init__(self, total_seconds: float) -> None:
        self._deadline = time.monotonic() + total_seconds
        # Generous: on a loaded machine the driver takes a while to report a wait that ended.
        self._margin = attempt_margin_ms(total_seconds * 1000) / 1000
        self.failure: TaskFailure | None = None

    def ms(self) -> float:
        """Milliseconds a Playwright call may wait (never 0, which Playwright reads as no limit)."""
        return max(1.0, (self._deadline - time.monotonic() - self._margin) * 1000)

    async def keeping_failure(self, work: Awaitable[Capture]) -> Capture:
        """Awaits the spec's `work`; the failure it ends with is kept as `failure`."""
        try:
            return await work
        except TaskFailure as failure:
            self.failure = failure
            raise


class BrowserSpecRunner:
    """Runs task specs on the browser pool and returns what they captured (a SpecRunner)."""

    def __init__(self, pool: BrowserPool, settings: AgentSettings) -> None:
        self._pool = pool
        self._settings = settings
        self._screencast_limits = RecordingLimits.of_screencasts(settings)

    async def run(
        self, spec: tasks_pb2.TaskSpec, profile_state: bytes = b"", tenant: str = ""
    ) -> Capture:
        """Runs `spec` of `tenant` within its timeoutMs; raises TaskFailure with a stable code.

        The context starts from `profile_state` (a saved profile's cookies and local
        storage); with `save_profile` the capture holds the context's state at the end.
        A task that may run warm (`choose_isolation`) runs in a warm context of its
        tenant's when the pool has one or room for one, else in a fresh context.

        The page's dialogs, pop-ups, downloads and crashes are handled by a PageGuard;
        closing the context is bounded by the pool, which kills a browser that hangs.
        Every request of the page goes through an egress listener of the task's own
        (a warm context's, handed over to this task). With `screencast`, the page is
        recorded until the action is done (TaskScreencast).
        """
        timeout_seconds = (spec.timeout_ms or DEFAULT_TIMEOUT_MS) / 1000
        options = self.context_options(spec)
        budget = Budget(timeout_seconds)
        _check_scheme(spec.url, "url")
        choice = choose_isolation(spec, self._settings.isolation, self._settings.warm_contexts)
        label = f"the task for {spec.url[:200]}"
        used: list[PooledBrowser] = []
        try:
            async with asyncio.timeout(timeout_seconds):
                if choice.warm:
                    async with self._pool.warm.lease(tenant, options, label, used.append) as warm:
                        if warm is not None:
                            return await self.run_warm(spec, warm, budget)
                return await self._run_fresh(spec, options, budget, profile_state, label, used)
        except TimeoutError as error:
            failure = budget.failure or TaskFailure(
                ErrorCode.TIMEOUT,
                f"timeoutMs: the task did not finish within its {timeout_seconds:g} s",
            )
            self._pool.health.after_failure(failure, used)
            raise failure from error
        except TaskFailure as failure:
            self._pool.health.after_failure(failure, used)
            raise

    async def run_warm(
        self, spec: tasks_pb2.TaskSpec, warm: WarmContext, budget: Budget
    ) -> Capture:
        """Runs `spec` on a leased warm context's page (the lease resets it afterwards)."""
        warm.context.set_default_timeout(spec.timeout_ms or DEFAULT_TIMEOUT_MS)
        guard = PageGuard(warm.context, warm.pooled)
        guard.watch(warm.page)
        observer = observer_for(warm.context, warm.egress, spec)
        max_text = self._settings.max_result_text_bytes
        try:
            work = browse(warm.page, spec, budget, warm.egress, max_text, observer=observer)
            return await budget.keeping_failure(guard.run(work))
        finally:
            guard.stop()
            if observer is not None:
                observer.stop()

    async def _run_fresh(
        self,
        spec: tasks_pb2.TaskSpec,
        options: dict[str, Any],
        budget: Budget,
        profile_state: bytes,
        label: str,
        used: list[PooledBrowser],
    ) -> Capture:
        """Runs `spec` in a new context of its own, closed afterwards; its browser in `used`.

        Its page's opening is guarded too: Playwright never answers it once the browser is gone.
        """
        screencast = TaskScreencast(
            spec, options["viewport"], self._pool.scratch_dir, self._screencast_limits
        )
        max_text = self._settings.max_result_text_bytes
        try:
            async with (
                self._pool.egress.session(label) as egress,
                self._pool.new_context(**options, proxy=egress.proxy) as (pooled, context),
            ):
                used.append(pooled)
                guard = PageGuard(context, pooled)
                observer = observer_for(context, egress, spec)

                async def work() -> Capture:
                    context.set_default_timeout(spec.timeout_ms or DEFAULT_TIMEOUT_MS)
                    if profile_state:
                        await load_profile(context, profile_state)
                    await prepare_context(context, spec.setup)
                    with failures_as(Stage.CAPTURE, "opening the task's page"):
                        page = await context.new_page()
                    guard.watch(page)
                    await screencast.follow(page)
                    capture = await browse(page, spec, budget, egress, max_text, observer=observer)
                    await screencast.stop()
                    if spec.save_profile:
                        state = await read_profile(context)
                        capture.profile_to_save = ProfileToSave(spec.profile, state)
                    return capture

                try:
                    capture = await budget.keeping_failure(guard.run(work()))
                finally:
                    guard.stop()
            return await screencast.add_video(capture)
        finally:
            await screencast.discard()

    def context_options(self, spec: tasks_pb2.TaskSpec) -> dict[str, Any]:
        """The new_context options for the spec's device, viewport and setup."""
        options: dict[str, Any] = dict(CONTEXT_OPTIONS)
        if spec.device:
            device = self._pool.devices.get(spec.device)
            if device is None:
                raise TaskFailure(
                    ErrorCode.INVALID_DEVICE,
                    f"device: {spec.device!r} is not a device Playwright knows, "
                    "e.g. 'iPhone 13' or 'Pixel 7'",
                )
            options.update(
                {name: value for name, value in device.items() if name != "default_browser_type"}
            )
        if spec.viewport.width and spec.viewport.height:
            options["viewport"] = {"width": spec.viewport.width, "height": spec.viewport.height}
        options.setdefault("viewport", DEFAULT_VIEWPORT._asdict())
        options.update(context_options(spec.setup))
        return options


async def browse(
    page: Page,
    spec: tasks_pb2.TaskSpec,
    budget: Budget,
    egress: EgressSession,
    max_text_bytes: int,
    *,
    navigate: bool = True,
    blocked_since: int = 0,
    observer: ContextObserver | None = None,
) -> Capture:
    """Goes to the spec's URL (when `navigate`), runs its steps and its action, if it has one.

    The result lists the requests the egress guard refused from `blocked_since` on
    (a session's page keeps one egress listener for all its commands), and what
    `spec.collect` asks for, from `observer`'s records.
    """
    audit_observer = PageObserver.for_spec(page, spec)
    try:
        status = 0
        if navigate:
            with tracer().start_as_current_span("page.navigate"):
                status = await _navigate(page, spec.url, "url", spec, budget, egress)
        for index, step in enumerate(spec.steps):
            field = f"steps[{index}]"
            with tracer().start_as_current_span(
                "page.step", attributes=step_attributes(step, index)
            ):
                if step.goto:
                    # The main document changes: the result reports the new one's status.
                    status = await _navigate(page, step.goto, f"{field}.goto", spec, budget, egress)
                elif step.back or step.forward:
                    status = await _go_in_history(page, step, field, spec, budget, egress)
                else:
                    await run_step(page, step, field, budget.ms, observer)
        if any(spec.HasField(action) for action in ACTIONS):
            seen = audit_observer.seen if audit_observer else None
            with tracer().start_as_current_span("page.capture", attributes=action_attributes(spec)):
                capture = await run_action(page, spec, budget.ms, max_text_bytes, seen)
        else:
            capture = Capture()
    finally:
        if audit_observer is not None:
            audit_observer.stop()
    capture.result.http_status = status
    capture.result.final_url = await shown_url(page)
    with failures_as(Stage.CAPTURE, "title"):
        capture.result.title = await page.title()
    await collect(page, spec.collect, observer, capture)
    capture.result.blocked_requests.extend(
        tasks_pb2.BlockedRequest(
            target=blocked.target,
            address=blocked.refusal.address,
            reason=blocked.refusal.reason.value,
            message=blocked.describe(),
        )
        for blocked in egress.blocked[blocked_since:]
    )
    return capture


def _check_scheme(url: str, field: str) -> None:
    """BLOCKED_URL for a URL that is not http or https (the scheduler refuses them too)."""
    scheme = urlsplit(url).scheme
    if scheme.lower() not in ("http", "https"):
        raise TaskFailure(
            ErrorCode.BLOCKED_URL,
            f"{field}: the scheme {scheme or 'none'!r} is refused; only http and https",
        )


async def _navigate(
    page: Page,
    url: str,
    field: str,
    spec: tasks_pb2.TaskSpec,
    budget: Budget,
    egress: EgressSession,
) -> int:
    """Goes to `url` (the spec's `field`); its HTTP status. The guard's refusals are BLOCKED_URL."""
    _check_scheme(url, field)
    return await _guarded(page, functools.partial(page.goto, url), url, field, spec, budget, egress)


async def _go_in_history(
    page: Page,
    step: tasks_pb2.Step,
    field: str,
    spec: tasks_pb2.TaskSpec,
    budget: Budget,
    egress: EgressSession,
) -> int:
    """Goes back or forward one entry; its HTTP status, 0 when restored without a response."""
    field = history_field(step, field)
    url = await history_target(page, step, field)
    go = page.go_back if step.back else page.go_forward
    return await _guarded(page, go, url, field, spec, budget, egress)


async def _guarded(
    page: Page,
    go: Callable[..., Awaitable[Response | None]],
    url: str,
    field: str,
    spec: tasks_pb2.TaskSpec,
    budget: Budget,
    egress: EgressSession,
) -> int:
    """Navigates by `go` (to `url`) in the budget; its HTTP status, the guard's refusals raised."""
    navigation = MainFrameNavigation(page)
    wait_until = _WAIT_UNTIL.get(spec.wait_until, _WAIT_UNTIL[DEFAULT_WAIT_UNTIL])
    try:
        with failures_as(Stage.NAVIGATION, field):
            response = await go(wait_until=wait_until, timeout=budget.ms())
    except TaskFailure as failure:
        response = await navigation.empty_error_answer(failure, wait_until, budget.ms(), field)
        if response is None:
            await navigation.error_page_shown(failure, budget.ms())
            raise (
                navigation.blocked(egress, url, field)
                or navigation.no_content(failure, field)
                or navigation.explained(failure, egress)
            ) from failure
    finally:
        navigation.stop()
    blocked = navigation.blocked(egress, url, field)
    if blocked is not None:
        raise blocked
    status = response.status if response is not None else 0
    if spec.fail_on_http_error and status >= 400:
        raise http_error(status, await shown_url(page), field)
    metrics.pages_scraped_total.inc()
    return status
