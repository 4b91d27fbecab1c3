"""The browsers of the open MCP sessions, one each, keyed by their Mcp-Session-Id.

A connection's browser (farm session) opens on its first tool call. It closes
when the client ends the MCP session (DELETE /mcp), when it has had no tool call
for the idle timeout (the farm closes an idle session by itself too), or when the
service stops. Every farm call carries the identity token the caller's latest
request brought, which the FarmApi has auth renew when it is about to expire
(farm_mcp.renewal), so that a long tool call or a close long after the last
request still carries a valid one, and none once the caller's key is revoked.
"""

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass

from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from prometheus_client import Gauge
from starlette.requests import Request

from farm_core.identity import IDENTITY_HEADER, Identity
from farm_mcp.identity import FarmUser
from farm_mcp_tools.browser import BrowserSettings, FarmBrowser, LateCloses
from farm_mcp_tools.farm import Credentials, FarmApi, FarmCallFailed
from farm_mcp_tools.runner import ToolContext

log = logging.getLogger(__name__)

# How many MCP sessions' idle closes are kept to be said: one an abandoned client
# never calls again is dropped, the oldest first, past this many.
MAX_IDLE_ENDS_KEPT = 4096

open_browsers = Gauge("farm_mcp_open_browsers", "Farm sessions held for MCP connections.")


@dataclass
class Held:
    """A connection's browser, the identity of the key that opened it, its latest token."""

    browser: FarmBrowser
    owner: Identity
    # The identity token of the connection's latest request (always the owner's key).
    token: str


class HttpConnections:
    """The MCP sessions' browsers (the tools' Connections for streamable HTTP)."""

    def __init__(
        self,
        farm: FarmApi,
        settings: BrowserSettings,
        close_timeout: float,
        late_closes: LateCloses,
    ) -> None:
        self._farm = farm
        self._settings = settings
        self._late_closes = late_closes
        self._close_timeout = close_timeout
        self._held: dict[str, Held] = {}
        # MCP sessions whose browser the idle sweep closed, oldest first: what their
        # next tool call says (a new browser would otherwise open without a word).
        self._idle_ended: OrderedDict[str, str] = OrderedDict()

    def browser(self, ctx: ToolContext) -> FarmBrowser:
        """The browser of the MCP session `ctx` came on, made on its first call."""
        session_id, user = _caller(ctx)
        held = self._held.get(session_id)
        if held is None:
            browser = FarmBrowser(self._farm, self._settings, self._late_closes)
            if (why := self._idle_ended.pop(session_id, None)) is not None:
                browser.closed_before(why)
            held = Held(browser, user.farm_identity, user.token)
            self._held[session_id] = held
            open_browsers.set(len(self._held))
        held.token = user.token
        return held.browser

    def credentials(self, ctx: ToolContext) -> Credentials:
        """The identity token the caller's request brought."""
        return _carrying(_caller(ctx)[1].token)

    async def end(self, session_id: str, idle_seconds: float = 0) -> None:
        """Closes the browser of an MCP session that has ended, if it had one.

        With `idle_seconds` (the idle sweep's close) the session's next tool call, if
        any, says that its browser closed; noted before the close is awaited, as that
        call may come meanwhile.
        """
        held = self._held.pop(session_id, None)
        self._idle_ended.pop(session_id, None)
        open_browsers.set(len(self._held))
        if held is None:
            return
        if idle_seconds and held.browser.session_id:
            self._idle_ended[session_id] = (
                f"the browser (farm session {held.browser.session_id}) has closed: it had "
                f"no tool call for {idle_seconds:g} s (the idle timeout); the next tool call "
                "opens a new one"
            )
            while len(self._idle_ended) > MAX_IDLE_ENDS_KEPT:
                self._idle_ended.popitem(last=False)
        try:
            await held.browser.close(_carrying(held.token), self._close_timeout)
        except FarmCallFailed as failure:
            # The farm's own idle timeout ends the session in any case.
            log.warning(
                "could not close the farm session of MCP session %s: %s", session_id, failure
            )

    async def end_idle(self, idle_seconds: float) -> None:
        """Closes the browsers that have had no tool call for `idle_seconds`."""
        now = time.monotonic()
        for session_id in [
            session_id
            for session_id, held in self._held.items()
            if now - held.browser.last_used > idle_seconds
        ]:
            await self.end(session_id, idle_seconds)

    async def end_all(self) -> None:
        """Closes every browser (the service is stopping)."""
        for session_id in list(self._held):
            await self.end(session_id)


def _carrying(token: str) -> Credentials:
    """Call metadata carrying the identity token `token`."""
    return ((IDENTITY_HEADER, token),)


def _caller(ctx: ToolContext) -> tuple[str, FarmUser]:
    """The MCP session id and the admitted caller of the request `ctx` came with."""
    request = ctx.request_context.request
    if not isinstance(request, Request):
        raise ToolError("this tool call came without an HTTP request")
    session_id = request.headers.get(MCP_SESSION_ID_HEADER, "")
    user = request.scope.get("user")
    if not session_id or not isinstance(user, FarmUser):
        raise ToolError("this tool call came without an MCP session or an admitted caller")
    return session_id, user
