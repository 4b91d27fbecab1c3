"""AsyncSession: one browser page of the farm kept between commands, and Playwright on it."""

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from browserfarm.calls import Calls
from browserfarm.contexts import AsyncWithOnly
from browserfarm.errors import FarmError
from browserfarm.results import Result, SessionInfo, Tab
from browserfarm.specs import extract_fields, parsed, session_command
from farm.sessions.v1 import sessions_pb2

if TYPE_CHECKING:
    from playwright.async_api import Browser, Playwright

LOG = logging.getLogger("browserfarm")

COMMAND_DEFAULT_SECONDS = 30.0
"""A session command's time limit when its timeoutMs is 0 (docs/sessions.md)."""
COMMAND_MARGIN_SECONDS = 30.0
"""What a command's call may take beyond the command's own limit: its artifacts' upload
and a screencast's encode (the edge lets a RunSessionCommand wait 330 s, 300 s and this)."""
OPEN_SECONDS = 610.0
"""How long CreateSession may wait: the scheduler looks for a place for up to 600 s and
then answers DEADLINE_EXCEEDED naming why, within the edge's 610 s; a caller that gave up
sooner would only learn of its own timeout (and the farm drop the opening)."""
CLOSE_SECONDS = 130.0
"""How long CloseSession may wait: the agent stores the session's recording first, for up
to the scheduler's 120 s, within the edge's 130 s."""


def session_spec(spec: Mapping[str, Any]) -> sessions_pb2.SessionSpec:
    """A SessionSpec from its JSON form or keywords (viewport, device, idle_timeout_seconds)."""
    return parsed(spec, sessions_pb2.SessionSpec())


class AsyncSession(AsyncWithOnly):
    """A farm session: `async with client.session() as session:` opens it, closes it after.

    Its commands act on the session's one page, which keeps its cookies, storage and
    place between them. A command that the farm answers UNAVAILABLE is not made again
    (it may have acted on the page); a rate-limited one is.
    """

    def __init__(self, calls: Calls, spec: sessions_pb2.SessionSpec) -> None:
        self._calls = calls
        self._spec = spec
        self._info: SessionInfo | None = None

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def info(self) -> SessionInfo:
        """The session as the farm last reported it."""
        if self._info is None:
            raise FarmError("the session is not open yet: use `async with` or open()")
        return self._info

    @property
    def id(self) -> str:
        """The session's id."""
        return self.info.id

    @property
    def cdp_url(self) -> str:
        """The DevTools WebSocket of the session's browser (through the farm's edge)."""
        return self.info.cdp_url

    @property
    def headers(self) -> dict[str, str]:
        """The headers a DevTools client must send to reach the session: the API key."""
        name, value = self._calls.authorization
        return {name: value}

    async def open(self) -> SessionInfo:
        """Opens the session on an agent (CreateSession)."""
        request = sessions_pb2.CreateSessionRequest(spec=self._spec)
        # Not made again on UNAVAILABLE: a second try could open a second browser.
        timeout = max(self._calls.options.timeout, OPEN_SECONDS)
        opening = asyncio.ensure_future(
            self._calls.call(
                self._calls.sessions.CreateSession, request, timeout=timeout, idempotent=False
            )
        )
        try:
            reply = await asyncio.shield(opening)
        except asyncio.CancelledError:
            # The caller gave up (cancel, wait_for, Ctrl-C), but the farm may have opened
            # the session already, its answer on the way: cancelling the call would drop
            # that answer and leave the browser open until its idle timeout.
            self._calls.clean_up_after(self._closed_when_opened(opening))
            raise
        self._info = SessionInfo.from_proto(reply)
        return self._info

    async def _closed_when_opened(self, opening: Awaitable[sessions_pb2.Session]) -> None:
        """Closes the session an abandoned open() opened, once the farm answers it."""
        try:
            reply = await asyncio.shield(opening)
        except FarmError:
            return  # not opened: nothing to close
        request = sessions_pb2.CloseSessionRequest(id=reply.id)
        timeout = max(self._calls.options.timeout, CLOSE_SECONDS)
        try:
            await self._calls.call(self._calls.sessions.CloseSession, request, timeout=timeout)
        except (FarmError, RuntimeError) as error:
            # No caller is left to raise it to: the session's idle timeout ends it.
            LOG.warning(
                "session %s, opened after its open was cancelled: not closed: %s", reply.id, error
            )

    async def refresh(self) -> SessionInfo:
        """The session as it stands now (GetSession)."""
        request = sessions_pb2.GetSessionRequest(id=self.id)
        self._info = SessionInfo.from_proto(
            await self._calls.call(self._calls.sessions.GetSession, request)
        )
        return self._info

    async def cdp_token(self) -> sessions_pb2.CdpToken:
        """A short-lived token attaching CDP clients that send no header (CreateCdpToken).

        Its `cdp_url` (ws) and `discovery_url` (http, for `connect_over_cdp`) carry it.
        """
        request = sessions_pb2.CreateCdpTokenRequest(id=self.id)
        return await self._calls.call(self._calls.sessions.CreateCdpToken, request)

    async def close(self) -> SessionInfo | None:
        """Closes the session and frees its browser; closing it again does nothing."""
        if self._info is None or not self._info.active:
            return self._info
        request = sessions_pb2.CloseSessionRequest(id=self._info.id)
        timeout = max(self._calls.options.timeout, CLOSE_SECONDS)
        self._info = SessionInfo.from_proto(
            await self._calls.call(self._calls.sessions.CloseSession, request, timeout=timeout)
        )
        return self._info

    async def run(self, command: Mapping[str, Any] | sessions_pb2.SessionCommand) -> Result:
        """One command in its JSON form: {"url"?, "steps": [...], one action as in a task}."""
        if not isinstance(command, sessions_pb2.SessionCommand):
            command = parsed(command, sessions_pb2.SessionCommand())
        request = sessions_pb2.RunSessionCommandRequest(id=self.id, command=command)
        # The call waits as long as the command may run, not only a plain call's time.
        limit = command.timeout_ms / 1000 if command.timeout_ms > 0 else COMMAND_DEFAULT_SECONDS
        timeout = max(self._calls.options.timeout, limit + COMMAND_MARGIN_SECONDS)
        reply = await self._calls.call(
            self._calls.sessions.RunSessionCommand, request, timeout=timeout, idempotent=False
        )
        return Result.from_proto(reply)

    async def goto(self, url: str, **options: Any) -> Result:
        """Navigates the page to `url` (wait_until, timeout_ms, steps as keywords)."""
        return await self.run(session_command(None, options, url=url))

    async def back(self) -> Result:
        """Goes back one entry in the page's history (an error when there is none)."""
        return await self.run({"steps": [{"back": True}]})

    async def forward(self) -> Result:
        """Goes forward one entry in the page's history (an error when there is none)."""
        return await self.run({"steps": [{"forward": True}]})

    async def tabs(self) -> list[Tab]:
        """The session's pages (tabs), the oldest first; `current` marks the one commands use."""
        return await self._tabs({"action": "TABS_ACTION_LIST"})

    async def select_tab(self, index: int) -> list[Tab]:
        """Makes the page at `index` current; the pages after (FailedPrecondition if none)."""
        return await self._tabs({"action": "TABS_ACTION_SELECT", "index": index})

    async def close_tab(self, index: int) -> list[Tab]:
        """Closes the page at `index` (not the last one); the newest left becomes current."""
        return await self._tabs({"action": "TABS_ACTION_CLOSE", "index": index})

    async def new_tab(self, url: str | None = None) -> list[Tab]:
        """Opens a new page (about:blank, or `url`) and makes it current; the pages after."""
        command: dict[str, Any] = {"tabs": {"action": "TABS_ACTION_NEW"}}
        if url:
            command["url"] = url
        return Tab.listed(await self.run(command))

    async def _tabs(self, tabs: dict[str, Any]) -> list[Tab]:
        return Tab.listed(await self.run({"tabs": tabs}))

    async def click(self, selector: str) -> Result:
        """Clicks the element `selector` finds."""
        return await self.run({"steps": [{"click": selector}]})

    async def fill(self, selector: str, value: str) -> Result:
        """Types `value` into the field `selector` finds."""
        return await self.run({"steps": [{"fill": {"selector": selector, "value": value}}]})

    async def press(self, key: str) -> Result:
        """Presses `key` ("Enter", "Tab", ...) on the focused element."""
        return await self.run({"steps": [{"press": key}]})

    async def screenshot(self, url: str | None = None, **options: Any) -> bytes:
        """The page (after going to `url`, if given) as an image."""
        result = await self.run(session_command("screenshot", options, url=url))
        return await self._calls.artifact(result, "SCREENSHOT")

    async def pdf(self, url: str | None = None, **options: Any) -> bytes:
        """The page (after going to `url`, if given) printed as a PDF.

        Keywords are the tasks' PDF options (paper_format, landscape, print_background,
        margin={"top": "1cm"}, page_ranges="1-3", prefer_css_page_size, scale) and
        SessionCommand fields.
        """
        result = await self.run(session_command("pdf", options, url=url))
        return await self._calls.artifact(result, "PDF")

    async def content(self, url: str | None = None, **options: Any) -> str:
        """The page's HTML, or its text with format="text"."""
        return (await self.run(session_command("content", options, url=url))).text

    async def extract(
        self, fields: Mapping[str, str], url: str | None = None, **options: Any
    ) -> Any:
        """Values picked from the page by CSS selectors, as client.extract() picks them."""
        command = session_command("extract", {"fields": extract_fields(fields), **options}, url=url)
        return (await self.run(command)).json

    async def connect_playwright(self, playwright: "Playwright") -> "Browser":
        """The session's browser in the caller's Playwright (CDP through the farm's edge).

        `async with async_playwright() as playwright: browser = await
        session.connect_playwright(playwright)`; the browser's first context holds the
        session's page. Closing that Browser detaches; the session stays open.
        """
        return await playwright.chromium.connect_over_cdp(self.cdp_url, headers=self.headers)
