"""A session's page setup: applied when it opens, changed by commands, reset to the open's.

A session's look is a device, a viewport and a PageSetup: the SessionSpec's at open,
then changed by commands (`device`, `viewport`, `setup`; `resetSetup` goes back to
the open's first). The session's browser runs one default context, whose options
cannot change, so the look is applied to what runs:
- screen, user agent, locale, time zone, JavaScript: per page, through a DevTools
  session of the agent's own, kept open for the page's life (Chromium drops an
  emulation when the DevTools session that set it detaches);
- extra headers, blocked requests, cookies: on the default context, where pages
  opened later find them too.
A page opened later (by the client, or as a pop-up) gets the emulation as soon as
the agent sees it; its first request may come before.
"""

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from playwright.async_api import BrowserContext, CDPSession, Page, Route
from playwright.async_api import Error as PlaywrightError

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.setup import RequestBlocker, answer_request, playwright_cookie
from farm_agent.errors import Stage, TaskFailure, failures_as
from farm_core.task_defaults import DEFAULT_VIEWPORT
from farm_core.task_errors import ErrorCode

log = logging.getLogger(__name__)

MAX_TOUCH_POINTS = 5
"""The touch points of an emulated touch screen (as Playwright's hasTouch)."""


@dataclass(frozen=True)
class Look:
    """What a session's pages are set up as: a device by name, a viewport and a PageSetup.

    The protos are never changed in place; a change makes a new Look.
    """

    device: str
    viewport: tasks_pb2.Viewport
    setup: tasks_pb2.PageSetup

    @classmethod
    def of_spec(cls, spec: sessions_pb2.SessionSpec) -> "Look":
        """The look a session opens with."""
        return cls(spec.device, spec.viewport, spec.setup)

    def changed_by(self, command: sessions_pb2.SessionCommand) -> "Look":
        """The look after a command's device, viewport and setup (cookies aside).

        A device brings its own viewport, user agent, scale, mobile and touch: it
        replaces those given before. Fields of the command's setup replace the
        look's when given (a true flag, a non-empty text, map or list).
        """
        setup = tasks_pb2.PageSetup()
        setup.CopyFrom(self.setup)
        device, viewport = self.device, self.viewport
        if command.device:
            device, viewport = command.device, tasks_pb2.Viewport()
            for name in ("user_agent", "device_scale_factor", "is_mobile", "has_touch"):
                setup.ClearField(name)
        if command.HasField("viewport"):
            viewport = command.viewport
        _merge(setup, command.setup)
        return Look(device, viewport, setup)


def _merge(setup: tasks_pb2.PageSetup, change: tasks_pb2.PageSetup) -> None:
    """Sets in `setup` every field `change` gives, except cookies (they go to the browser)."""
    for descriptor, value in change.ListFields():
        if descriptor.name == "cookies":
            continue
        setup.ClearField(descriptor.name)  # type: ignore[arg-type]
        field = getattr(setup, descriptor.name)
        if descriptor.name == "extra_headers":
            field.update(value)
        elif descriptor.name == "block_resources":
            field.extend(value)
        else:
            setattr(setup, descriptor.name, value)


@dataclass(frozen=True)
class Emulation:
    """A look resolved to what Chromium emulates per page (0 scale: the browser's own)."""

    width: int
    height: int
    scale: float
    mobile: bool
    touch: bool
    user_agent: str
    locale: str
    timezone: str
    javascript_disabled: bool

    @classmethod
    def of(cls, look: Look, devices: Mapping[str, Mapping[str, Any]]) -> "Emulation":
        """The emulation of `look`: its device's, then its viewport, then its setup's fields."""
        width, height = DEFAULT_VIEWPORT
        scale, mobile, touch, user_agent = 0.0, False, False, ""
        if look.device:
            descriptor = devices.get(look.device)
            if descriptor is None:
                raise TaskFailure(
                    ErrorCode.INVALID_DEVICE,
                    f"device: {look.device!r} is not a device Playwright knows, e.g. 'iPhone 13'",
                )
            width = int(descriptor["viewport"]["width"])
            height = int(descriptor["viewport"]["height"])
            scale = float(descriptor.get("device_scale_factor", 0.0))
            mobile = bool(descriptor.get("is_mobile", False))
            touch = bool(descriptor.get("has_touch", False))
            user_agent = str(descriptor.get("user_agent", ""))
        if look.viewport.width and look.viewport.height:
            width, height = look.viewport.width, look.viewport.height
        setup = look.setup
        return cls(
            width=width,
            height=height,
            scale=setup.device_scale_factor or scale,
            mobile=mobile or setup.is_mobile,
            touch=touch or setup.has_touch,
            user_agent=setup.user_agent or user_agent,
            locale=setup.locale,
            timezone=setup.timezone,
            javascript_disabled=setup.javascript_disabled,
        )


class _PageEmulation:
    """One page's DevTools session and the emulation last sent through it."""

    def __init__(self, page: Page, cdp: CDPSession) -> None:
        self.page = page
        self._cdp = cdp
        self._sent: Emulation | None = None

    async def apply(self, emulation: Emulation) -> None:
        """Sends what differs from the emulation sent before (everything the first time)."""
        sent = self._sent
        if sent is None or (sent.width, sent.height, sent.scale, sent.mobile) != (
            emulation.width,
            emulation.height,
            emulation.scale,
            emulation.mobile,
        ):
            await self._emulate_screen(emulation)
        if sent is None or sent.touch != emulation.touch:
            touch: dict[str, Any] = {"enabled": emulation.touch}
            if emulation.touch:
                touch["maxTouchPoints"] = MAX_TOUCH_POINTS
            await self._cdp.send("Emulation.setTouchEmulationEnabled", touch)
        if sent is None or (sent.user_agent, sent.locale) != (
            emulation.user_agent,
            emulation.locale,
        ):
            # An empty user agent keeps the browser's; the locale is its Accept-Language.
            await self._cdp.send(
                "Emulation.setUserAgentOverride",
                {"userAgent": emulation.user_agent, "acceptLanguage": emulation.locale},
            )
            await self._cdp.send(
                "Emulation.setLocaleOverride",
                {"locale": emulation.locale} if emulation.locale else {},
            )
        if sent is None or sent.timezone != emulation.timezone:
            await self._cdp.send(
                "Emulation.setTimezoneOverride", {"timezoneId": emulation.timezone}
            )
        if sent is None or sent.javascript_disabled != emulation.javascript_disabled:
            await self._cdp.send(
                "Emulation.setScriptExecutionDisabled", {"value": emulation.javascript_disabled}
            )
        self._sent = emulation

    async def _emulate_screen(self, emulation: Emulation) -> None:
        # Playwright's own viewport first, so that its screenshots know the size; then
        # ours, sent last, which wins in Chromium and adds the scale and mobile.
        await self.page.set_viewport_size({"width": emulation.width, "height": emulation.height})
        await self._cdp.send(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": emulation.width,
                "height": emulation.height,
                "deviceScaleFactor": emulation.scale,
                "mobile": emulation.mobile,
            },
        )


class SessionSetup:
    """One session's look, now and at open, and the pages and context it is applied to."""

    def __init__(
        self,
        context: BrowserContext,
        devices: Mapping[str, Mapping[str, Any]],
        spec: sessions_pb2.SessionSpec,
    ) -> None:
        self._context = context
        self._devices = devices
        self._opened = Look.of_spec(spec)
        self._look = self._opened
        self._emulation = Emulation.of(self._look, devices)
        self._blocker = RequestBlocker()
        self._routed = False
        self._pages: dict[Page, _PageEmulation] = {}
        # One change at a time; a page is covered between changes, never during one.
        self._lock = asyncio.Lock()

    async def open(self, page: Page) -> None:
        """Applies the SessionSpec's setup: the context's part, its cookies, the first page."""
        async with self._lock:
            await self._apply_to_context(self._look.setup, self._look.setup.cookies)
            await self._cover(page)

    async def cover(self, page: Page) -> None:
        """Applies the session's emulation to `page` if it has not got it yet."""
        async with self._lock:
            await self._cover(page)

    async def cover_quietly(self, page: Page) -> None:
        """cover() for a page that opened on its own: a failure is logged, not raised."""
        try:
            await self.cover(page)
        except (TaskFailure, PlaywrightError) as error:
            log.warning("a new page of a session did not get its setup: %s", error)

    async def change(self, command: sessions_pb2.SessionCommand) -> None:
        """Applies a command's resetSetup, device, viewport and setup, in that order."""
        if not (
            command.reset_setup
            or command.device
            or command.HasField("viewport")
            or command.HasField("setup")
        ):
            return
        async with self._lock:
            start = self._opened if command.reset_setup else self._look
            look = start.changed_by(command)
            emulation = Emulation.of(look, self._devices)
            await self._apply_to_context(look.setup, command.setup.cookies)
            for page_emulation in list(self._pages.values()):
                await self._emulate(page_emulation, emulation)
            self._look, self._emulation = look, emulation

    async def _cover(self, page: Page) -> None:
        if page in self._pages or page.is_closed():
            return
        with failures_as(Stage.CAPTURE, "setup"):
            cdp = await self._context.new_cdp_session(page)
        page_emulation = _PageEmulation(page, cdp)
        self._pages[page] = page_emulation
        page.once("close", self._forget)
        await self._emulate(page_emulation, self._emulation)

    def _forget(self, page: Page) -> None:
        self._pages.pop(page, None)

    async def _emulate(self, page_emulation: _PageEmulation, emulation: Emulation) -> None:
        """Emulates on one page; a page that closed meanwhile is forgotten, not a failure."""
        try:
            await page_emulation.apply(emulation)
        except PlaywrightError as error:
            if page_emulation.page.is_closed():
                self._pages.pop(page_emulation.page, None)
                return
            raise TaskFailure(ErrorCode.INTERNAL, f"setup: {error.message}") from error

    async def _apply_to_context(
        self, setup: tasks_pb2.PageSetup, cookies: Iterable[tasks_pb2.Cookie]
    ) -> None:
        """Headers, request blocking and cookies: the default context's, for every page."""
        with failures_as(Stage.CAPTURE, "setup"):
            await self._context.set_extra_http_headers(dict(setup.extra_headers))
            self._blocker = RequestBlocker.of(setup)
            if self._blocker.active and not self._routed:
                await self._context.route("**/*", self._answer)
            elif self._routed and not self._blocker.active:
                await self._context.unroute("**/*", self._answer)
            self._routed = self._blocker.active
        converted = [playwright_cookie(cookie) for cookie in cookies]
        if converted:
            with failures_as(Stage.CAPTURE, "setup.cookies"):
                await self._context.add_cookies(converted)

    async def _answer(self, route: Route) -> None:
        await answer_request(route, self._blocker)
