"""What a result reports on request (CollectOptions): console, network log, HAR, timing, cookies."""

from playwright.async_api import BrowserContext, Page
from playwright.async_api import Cookie as PlaywrightCookie

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import Capture, CapturedArtifact
from farm_agent.browser.har import HAR_CONTENT_TYPE, har_json
from farm_agent.browser.observers import ContextObserver, RecordedRequest
from farm_agent.browser.steps import waits_for_network_idle
from farm_agent.browser.timing import page_timing
from farm_agent.egress.session import EgressSession
from farm_agent.errors import Stage, TaskFailure, failures_as
from farm_core.task_errors import ErrorCode

MAX_RESULT_COOKIES = 300
"""Cookies a result lists at most."""

_SAME_SITE = {
    "Strict": tasks_pb2.SAME_SITE_STRICT,
    "Lax": tasks_pb2.SAME_SITE_LAX,
    "None": tasks_pb2.SAME_SITE_NONE,
}


def needs_observer(options: tasks_pb2.CollectOptions) -> bool:
    """Whether `options` asks for what is recorded while the page runs (console, requests)."""
    return options.console or options.network or options.har


def observer_for(
    context: BrowserContext, egress: EgressSession, spec: tasks_pb2.TaskSpec
) -> ContextObserver | None:
    """An observer of a task's context, attached before its page opens, if `spec` needs one.

    It does for what `spec.collect` reports and for steps that wait for network idle.
    """
    if needs_observer(spec.collect) or waits_for_network_idle(spec.steps):
        return ContextObserver(context, egress)
    return None


async def collect(
    page: Page,
    options: tasks_pb2.CollectOptions,
    observer: ContextObserver | None,
    capture: Capture,
) -> None:
    """Adds to `capture` what `options` asks for; the observer's readers move on."""
    if needs_observer(options):
        if observer is None:
            raise TaskFailure(ErrorCode.INTERNAL, "collect: the page was not observed")
        await _recorded(options, observer, capture)
    if options.timing:
        with failures_as(Stage.CAPTURE, "collect.timing"):
            capture.result.timing.CopyFrom(await page_timing(page))
    if options.cookies:
        with failures_as(Stage.CAPTURE, "collect.cookies"):
            cookies = await page.context.cookies()
        capture.result.cookies.extend(
            cookie_message(cookie) for cookie in cookies[:MAX_RESULT_COOKIES]
        )


async def _recorded(
    options: tasks_pb2.CollectOptions, observer: ContextObserver, capture: Capture
) -> None:
    if options.console:
        capture.result.console.extend(observer.console.take("console"))
    logged = observer.requests.take("network") if options.network else []
    archived = observer.requests.take("har") if options.har else []
    await observer.measure([*logged, *archived])
    capture.result.network.extend(network_request(recorded) for recorded in logged)
    if options.har:
        har = CapturedArtifact(
            "har", tasks_pb2.ARTIFACT_KIND_HAR, HAR_CONTENT_TYPE, har_json(archived)
        )
        capture.artifacts.append(har)


def network_request(recorded: RecordedRequest) -> tasks_pb2.NetworkRequest:
    """A recorded request as the network log lists it (a request in flight as it stands)."""
    return tasks_pb2.NetworkRequest(
        method=recorded.request.method,
        url=recorded.url,
        status=recorded.status,
        resource_type=recorded.request.resource_type,
        duration_ms=recorded.duration_ms,
        size_bytes=max(recorded.body_bytes, 0),
        failure=recorded.failure,
    )


def cookie_message(cookie: PlaywrightCookie) -> tasks_pb2.Cookie:
    """A cookie of the browser as the result carries it."""
    expires = cookie.get("expires", -1)
    return tasks_pb2.Cookie(
        name=cookie.get("name", ""),
        value=cookie.get("value", ""),
        domain=cookie.get("domain", ""),
        path=cookie.get("path", ""),
        # Playwright says -1 for a session cookie; the result says 0.
        expires=int(expires) if expires > 0 else 0,
        http_only=cookie.get("httpOnly", False),
        secure=cookie.get("secure", False),
        same_site=_SAME_SITE.get(cookie.get("sameSite", ""), tasks_pb2.SAME_SITE_UNSPECIFIED),
    )
