"""A page's setup (`setup` of a task, a session or a command) in Playwright's terms.

Identity, locale and abilities become a task's new_context options; cookies go into
the context before the page loads; blocked resource types and tracker hosts are
refused by a route, so the page sees them fail (net::ERR_BLOCKED_BY_CLIENT). A
session applies the same pieces to its running browser (`farm_agent.sessions.setup`).
"""

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

# add_cookies's parameter type; Playwright defines it only in its implementation package.
from playwright._impl._api_structures import SetCookieParam
from playwright.async_api import BrowserContext, Route
from playwright.async_api import Error as PlaywrightError

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.trackers import is_tracker
from farm_agent.errors import Stage, failures_as

RESOURCE_TYPES: Mapping[int, str] = {
    tasks_pb2.RESOURCE_TYPE_IMAGE: "image",
    tasks_pb2.RESOURCE_TYPE_FONT: "font",
    tasks_pb2.RESOURCE_TYPE_MEDIA: "media",
    tasks_pb2.RESOURCE_TYPE_STYLESHEET: "stylesheet",
}
"""Blockable kinds of request by their proto value, as Chromium names them."""

SAME_SITE: Mapping[int, Literal["Strict", "Lax", "None"]] = {
    tasks_pb2.SAME_SITE_STRICT: "Strict",
    tasks_pb2.SAME_SITE_LAX: "Lax",
    tasks_pb2.SAME_SITE_NONE: "None",
}


def context_options(setup: tasks_pb2.PageSetup) -> dict[str, Any]:
    """The new_context options the setup asks for; they override a device's."""
    options: dict[str, Any] = {}
    if setup.user_agent:
        options["user_agent"] = setup.user_agent
    if setup.extra_headers:
        options["extra_http_headers"] = dict(setup.extra_headers)
    if setup.locale:
        options["locale"] = setup.locale
    if setup.timezone:
        options["timezone_id"] = setup.timezone
    if setup.javascript_disabled:
        options["java_script_enabled"] = False
    if setup.device_scale_factor:
        options["device_scale_factor"] = setup.device_scale_factor
    if setup.is_mobile:
        options["is_mobile"] = True
    if setup.has_touch:
        options["has_touch"] = True
    return options


def playwright_cookie(cookie: tasks_pb2.Cookie) -> SetCookieParam:
    """A Cookie as Playwright's add_cookies takes it."""
    converted: SetCookieParam = {
        "name": cookie.name,
        "value": cookie.value,
        "httpOnly": cookie.http_only,
        "secure": cookie.secure,
    }
    if cookie.url:
        converted["url"] = cookie.url
    else:
        converted["domain"] = cookie.domain
        converted["path"] = cookie.path or "/"
    if cookie.expires:
        converted["expires"] = float(cookie.expires)
    if cookie.same_site in SAME_SITE:
        converted["sameSite"] = SAME_SITE[cookie.same_site]
    return converted


@dataclass(frozen=True)
class RequestBlocker:
    """Which requests a page may not make: of these resource types, or to tracker hosts."""

    resource_types: frozenset[str] = frozenset()
    trackers: bool = False

    @classmethod
    def of(cls, setup: tasks_pb2.PageSetup) -> "RequestBlocker":
        """The blocker for a setup's blockResources and blockTrackers."""
        return cls(
            frozenset(RESOURCE_TYPES[kind] for kind in setup.block_resources),
            setup.block_trackers,
        )

    @property
    def active(self) -> bool:
        """Whether it refuses anything (a route slows every request: set only when needed)."""
        return bool(self.resource_types) or self.trackers

    def refuses(self, resource_type: str, url: str) -> bool:
        """Whether a request of this type to this URL is refused."""
        if resource_type in self.resource_types:
            return True
        return self.trackers and is_tracker(urlsplit(url).hostname or "")

    def route_handler(self) -> Callable[[Route], Awaitable[None]]:
        """A route handler that refuses what this blocker refuses.

        A function of its own: Playwright marks a handler with an attribute, which
        neither a frozen instance nor its bound methods take.
        """

        async def refuse_blocked(route: Route) -> None:
            await answer_request(route, self)

        return refuse_blocked


async def answer_request(route: Route, blocker: RequestBlocker) -> None:
    """Aborts the route's request when `blocker` refuses it; hands any other one on."""
    request = route.request
    # The page (or the context) may close while a request waits here.
    with contextlib.suppress(PlaywrightError):
        if blocker.refuses(request.resource_type, request.url):
            await route.abort("blockedbyclient")
        else:
            await route.fallback()


async def prepare_context(context: BrowserContext, setup: tasks_pb2.PageSetup) -> None:
    """Puts the setup's cookies into a new context and refuses what it blocks."""
    if setup.cookies:
        with failures_as(Stage.CAPTURE, "setup.cookies"):
            await context.add_cookies([playwright_cookie(cookie) for cookie in setup.cookies])
    blocker = RequestBlocker.of(setup)
    if blocker.active:
        await context.route("**/*", blocker.route_handler())
