"""What the audits need from the page's loading, noted while the task runs.

The main document's response (for its headers and status), the page's console
errors and uncaught exceptions, and requests made over plain http from an https
page. A PageObserver is set up before navigation, only for a spec with an audit.
A session command that does not navigate has no document response of its own: the
page then asks for its own URL again (with its cookies, through the same egress
guard) and the audits read that answer.
"""

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from playwright.async_api import ConsoleMessage, Page, Request, Response
from playwright.async_api import Error as PlaywrightError

from farm.tasks.v1 import tasks_pb2
from farm_agent.errors import TaskFailure
from farm_core.task_errors import ErrorCode

MAX_KEPT = 100
"""Console errors and insecure requests kept; later ones are dropped."""

_REFETCH = """(url) => fetch(url, {cache: "no-store", credentials: "include"})
    .then(() => "", (error) => String(error))"""


@dataclass(frozen=True)
class DocumentResponse:
    """The main document's answer: its URL, status and headers (names in lower case)."""

    url: str
    status: int
    headers: tuple[tuple[str, str], ...]

    def values(self, name: str) -> list[str]:
        """Every value of header `name` (e.g. each Set-Cookie line)."""
        return [value for header, value in self.headers if header == name]

    def header(self, name: str) -> str | None:
        """Header `name`, its values joined by ", "; None when it is absent."""
        found = self.values(name)
        return ", ".join(found) if found else None

    @property
    def https(self) -> bool:
        """Whether the document came over https."""
        return urlsplit(self.url).scheme == "https"


@dataclass
class Observations:
    """What a PageObserver saw: the latest main document response and the page's troubles."""

    document: Response | None = None
    console_errors: list[str] = field(default_factory=list)
    insecure_requests: list[str] = field(default_factory=list)


class PageObserver:
    """Notes the page's main document response, console errors and insecure requests."""

    def __init__(self, page: Page) -> None:
        self._page = page
        self.seen = Observations()
        page.on("response", self._on_response)
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)
        page.on("request", self._on_request)

    @classmethod
    def for_spec(cls, page: Page, spec: tasks_pb2.TaskSpec) -> "PageObserver | None":
        """An observer of `page` when the spec has an audit; None otherwise."""
        return cls(page) if spec.HasField("audit") else None

    def stop(self) -> None:
        """Stops noting (a session's page lives on after the command)."""
        self._page.remove_listener("response", self._on_response)
        self._page.remove_listener("console", self._on_console)
        self._page.remove_listener("pageerror", self._on_page_error)
        self._page.remove_listener("request", self._on_request)

    def _on_response(self, response: Response) -> None:
        try:
            main_document = (
                response.request.is_navigation_request() and response.frame == self._page.main_frame
            )
        except PlaywrightError:  # A service worker's response has no frame.
            return
        if main_document:
            self.seen.document = response

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url", "").split("?", 1)[0]
            line = message.location.get("lineNumber")
            place = f" ({where}:{line})" if where else ""
            _keep(self.seen.console_errors, message.text + place)

    def _on_page_error(self, error: PlaywrightError) -> None:
        _keep(self.seen.console_errors, f"Uncaught {error.name or 'Error'}: {error.message}")

    def _on_request(self, request: Request) -> None:
        if urlsplit(request.url).scheme != "http":
            return
        try:
            document_url = request.frame.url
        except PlaywrightError:
            return
        if urlsplit(document_url).scheme == "https":
            _keep(self.seen.insecure_requests, request.url.split("?", 1)[0])


def _keep(kept: list[str], item: str) -> None:
    if len(kept) < MAX_KEPT and item not in kept:
        kept.append(item)


async def document_response(
    page: Page, seen: Observations, time_left_ms: float
) -> DocumentResponse:
    """The main document's response as seen, or the page's URL asked for again."""
    response = seen.document
    if response is None:
        response = await _refetch(page, time_left_ms)
    headers = await response.headers_array()
    return DocumentResponse(
        url=response.url,
        status=response.status,
        headers=tuple((header["name"].lower(), header["value"]) for header in headers),
    )


async def _refetch(page: Page, time_left_ms: float) -> Response:
    url = page.url
    if urlsplit(url).scheme not in ("http", "https"):
        raise TaskFailure(
            ErrorCode.NAVIGATION_FAILED,
            f"audit: the page ({url[:100]}) is not a web page; give the command a url",
        )
    async with page.expect_response(
        lambda response: response.url == url and response.request.resource_type == "fetch",
        timeout=time_left_ms,
    ) as answer:
        problem = await page.evaluate(_REFETCH, url)
        if problem:
            raise TaskFailure(
                ErrorCode.NAVIGATION_FAILED,
                f"audit: the page could not ask for its own headers again ({problem[:200]}); "
                "give the command a url",
            )
    return await answer.value
