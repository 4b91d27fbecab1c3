"""What happened to the main frame while a navigation ran: its requests, its response.

Full Chromium (a session's browser) shows its own error page for an HTTP error
answered with an empty body, and Playwright's goto then fails with
`net::ERR_HTTP_RESPONSE_CODE_FAILURE`; the headless shell (a task's browser) shows
the empty document. The server did answer, so such a navigation succeeds with the
answer's status, as a task's does: once Chromium's error page is up, it is emptied
(the page a task sees), and the page's URL is reported as the one that answered.
"""

import asyncio
import contextlib
from typing import Literal

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Frame, Page, Request, Response

from farm_agent.egress.proxy_wire import host_port, url_host_port
from farm_agent.egress.session import EgressSession
from farm_agent.errors import Stage, TaskFailure, failures_as
from farm_core.task_errors import ErrorCode

EMPTY_BODY_ERROR = "net::ERR_HTTP_RESPONSE_CODE_FAILURE"
"""How Chromium fails a navigation whose HTTP error answer had no body."""
ERROR_PAGE_PREFIX = "chrome-error://"
"""Where Chromium's own error pages are."""
NETWORK_ERROR = "net::ERR_"
"""How Playwright's goto names a navigation that failed in the network."""
NO_CONTENT = {204: "No Content", 205: "Reset Content"}
"""Answers a browser shows no page for: it aborts the navigation and stays where it was."""
ERROR_PAGE_SECONDS = 2.0
"""How long a failed navigation waits for Chromium's error page (it comes within ~0.1 s)."""


class MainFrameNavigation:
    """The URLs the main frame asked for while a navigation ran (redirects too), its answer."""

    def __init__(self, page: Page) -> None:
        self._page = page
        self.urls: list[str] = []
        self.response: Response | None = None
        self._committed = asyncio.Event()
        self._error_page = asyncio.Event()
        page.on("request", self._on_request)
        page.on("response", self._on_response)
        page.on("framenavigated", self._on_frame_navigated)

    def _main_frame_navigation(self, request: Request) -> bool:
        return request.is_navigation_request() and request.frame == self._page.main_frame

    def _on_request(self, request: Request) -> None:
        if self._main_frame_navigation(request):
            self.urls.append(request.url)

    def _on_response(self, response: Response) -> None:
        if self._main_frame_navigation(response.request):
            self.response = response
            self._committed.clear()

    def _on_frame_navigated(self, frame: Frame) -> None:
        if frame != self._page.main_frame:
            return
        if self.response is not None:
            self._committed.set()
        if frame.url.startswith(ERROR_PAGE_PREFIX):
            self._error_page.set()

    async def error_page_shown(self, failure: TaskFailure, timeout_ms: float) -> None:
        """Waits (briefly) for the error page Chromium shows after a network failure.

        Playwright's goto fails before Chromium commits that page: a navigation that a
        session's next command starts meanwhile is interrupted by it ("interrupted by
        another navigation to chrome-error://chromewebdata/"). A failure without such
        a page (an aborted navigation, a download) does not wait.
        """
        if NETWORK_ERROR not in failure.message or "ERR_ABORTED" in failure.message:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(ERROR_PAGE_SECONDS, timeout_ms / 1000)):
                await self._error_page.wait()

    def stop(self) -> None:
        """Stops noting requests: the navigation has ended."""
        self._page.remove_listener("request", self._on_request)
        self._page.remove_listener("response", self._on_response)
        self._page.remove_listener("framenavigated", self._on_frame_navigated)

    async def empty_error_answer(
        self,
        failure: TaskFailure,
        wait_until: Literal["load", "domcontentloaded", "networkidle"],
        timeout_ms: float,
        field: str,
    ) -> Response | None:
        """The HTTP error answer with an empty body that `failure` was, if it was one.

        Waits (up to `timeout_ms`) for Chromium's error page to be up and loaded,
        then empties it; None when the failure was anything else.
        """
        response = self.response
        if EMPTY_BODY_ERROR not in failure.message or response is None or response.status < 400:
            return None
        try:
            async with asyncio.timeout(timeout_ms / 1000):
                await self._committed.wait()
        except TimeoutError:
            return None
        with failures_as(Stage.NAVIGATION, field):
            await self._page.wait_for_load_state(wait_until, timeout=timeout_ms)
            if self._page.url.startswith(ERROR_PAGE_PREFIX):
                await self._page.evaluate("() => { document.open(); document.close(); }")
        return response

    def no_content(self, failure: TaskFailure, field: str) -> TaskFailure | None:
        """A final failure when the answer was 204 or 205, which Chromium shows no page for.

        Chromium aborts such a navigation (`net::ERR_ABORTED`) and stays on the page
        it had: every attempt would meet the same answer, so none is made again.
        """
        response = self.response
        if (
            response is None
            or response.status not in NO_CONTENT
            or "ERR_ABORTED" not in (failure.message)
        ):
            return None
        return TaskFailure(
            ErrorCode.NAVIGATION_FAILED,
            f"{field}: the server answered HTTP {response.status} {NO_CONTENT[response.status]}"
            f" ({response.url}), which has no page to show, so the browser stayed where it was;"
            " not retried",
            http_status=response.status,
            retryable=False,
        )

    def blocked(self, egress: EgressSession, first_url: str, field: str) -> TaskFailure | None:
        """BLOCKED_URL when the egress guard refused the navigation or one of its redirects."""
        # Chromium's first request is the task's URL in its canonical form (a decimal
        # or hex IPv4 address spelled out), not a redirect; later ones are redirects.
        for index, url in enumerate([first_url, *self.urls]):
            host, port = url_host_port(url)
            refused = egress.refusal_for(host, port) if host else None
            if refused is None:
                continue
            shown = url.split("?", 1)[0]
            where = f"{field}: " if index <= 1 else f"{field}: redirected to {shown}: "
            return TaskFailure(ErrorCode.BLOCKED_URL, where + refused.describe())
        return None

    def explained(self, failure: TaskFailure, egress: EgressSession) -> TaskFailure:
        """The failure with the egress guard's reason added when it could not reach the host.

        Final when the host's name does not exist (NXDOMAIN): no retry would find it.
        """
        if failure.code is not ErrorCode.NAVIGATION_FAILED:
            return failure
        for url in reversed(self.urls):
            host, port = url_host_port(url)
            target = host_port(host, port)
            reason = egress.failures.get(target) if host else None
            if reason is not None and target in egress.nonexistent:
                # No attempt finds a name that does not exist: final, and not the host's fault.
                return TaskFailure(
                    failure.code,
                    f"{failure.message} ({reason}; the name does not exist, so it is not retried)",
                    retryable=False,
                )
            if reason is not None:
                return TaskFailure(failure.code, f"{failure.message} ({reason})")
        return failure


async def shown_url(page: Page) -> str:
    """The page's URL; for Chromium's error page, the URL whose answer it stands for."""
    if not page.url.startswith(ERROR_PAGE_PREFIX):
        return page.url
    try:
        cdp = await page.context.new_cdp_session(page)
        try:
            history = await cdp.send("Page.getNavigationHistory")
        finally:
            await cdp.detach()
        return str(history["entries"][history["currentIndex"]]["url"])
    except (PlaywrightError, LookupError):
        # The error page's own URL is still an answer: the result is not lost for it.
        return page.url
