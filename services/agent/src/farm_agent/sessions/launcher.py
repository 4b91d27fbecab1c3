"""A session's browser started (or a spare taken) and set up as its order says."""

import asyncio
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page

from farm.queue.v1 import queue_pb2
from farm_agent.browser.observers import ContextObserver
from farm_agent.browser.pool import BrowserPool
from farm_agent.errors import TaskFailure, is_crash
from farm_agent.media.recorder import RecordingLimits, ScreenRecorder
from farm_agent.media.screencast import Screencast
from farm_agent.saved.keeper import CaptureKeeper
from farm_agent.saved.profiles import load_profile
from farm_agent.sessions.dialogs import SessionDialogs
from farm_agent.sessions.screencasts import SessionScreencasts
from farm_agent.sessions.session import OpenSession
from farm_agent.sessions.setup import SessionSetup
from farm_agent.sessions.warm import (
    DEFAULT_SCREEN,
    Screen,
    SpareBrowsers,
    WarmBrowser,
    screen_for,
    start_browser,
)
from farm_agent.settings import AgentSettings
from farm_agent.work.uploader import ArtifactOwner

log = logging.getLogger(__name__)


class SessionLauncher:
    """Starts sessions' browsers: a spare one when the screen is the default, else a fresh one."""

    def __init__(
        self,
        settings: AgentSettings,
        pool: BrowserPool,
        keeper: CaptureKeeper,
        spares: SpareBrowsers,
        sessions_root: Path,
        clock: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._keeper = keeper
        self._spares = spares
        self._sessions_root = sessions_root
        self._clock = clock
        self._screencast_limits = RecordingLimits.of_screencasts(settings)

    async def launch(self, order: queue_pb2.OpenSessionOrder) -> OpenSession:
        """The ordered session's browser, a spare one if it fits, set up for the session."""
        spec = order.spec
        screen = screen_for(spec.device, spec.viewport, self._pool.devices)
        spare = await self._spares.take() if screen == DEFAULT_SCREEN else None
        if spare is not None:
            try:
                return await self._prepare(order, spare, screen)
            except (TaskFailure, PlaywrightError) as error:
                if not is_crash(error):
                    raise
                # A spare waited idle; its page may have died meanwhile (a renderer
                # killed by the OOM killer, say). A fresh browser serves the session.
                log.warning(
                    "session %s: a spare browser failed its setup (%s); starting a fresh one",
                    order.session_id,
                    error,
                )
        warm = await start_browser(
            self._pool, self._settings, screen, self._sessions_root / order.session_id
        )
        return await self._prepare(order, warm, screen)

    async def _prepare(
        self, order: queue_pb2.OpenSessionOrder, warm: WarmBrowser, screen: Screen
    ) -> OpenSession:
        """The session on `warm`: its profile, look, screencast and recorder set up.

        On failure the browser is closed and its folder removed.
        """
        spec = order.spec
        try:
            page = await warm.browser.page()
            if spec.profile:
                owner = ArtifactOwner(order.tenant, order.session_id, order.upload_grant)
                state = await self._keeper.load_profile(owner, spec.profile)
                if state:
                    await load_profile(warm.browser.context, state)
            screencast = Screencast(screen.width, screen.height)
            session = OpenSession(
                session_id=order.session_id,
                tenant=order.tenant,
                spec=spec,
                browser=warm.browser,
                egress=warm.egress,
                screencast=screencast,
                expires_at=self._clock() + _seconds_until(order.expire_time),
                folder=warm.folder,
                observer=ContextObserver(warm.browser.context, warm.egress),
                screencasts=SessionScreencasts(
                    order.session_id,
                    screencast,
                    warm.folder,
                    (screen.width, screen.height),
                    self._screencast_limits,
                ),
                setup=SessionSetup(warm.browser.context, self._pool.devices, spec),
                dialogs=SessionDialogs(warm.browser.context, self._settings.session_dialog_seconds),
                clock=self._clock,
                resources=warm.resources,
                grant=order.upload_grant,
            )
            # The viewport, device and setup of the spec; pages opened later get them too.
            await session.setup.open(page)
            warm.browser.context.on(
                "page",
                lambda new_page: session.in_background(session.setup.cover_quietly(new_page)),
            )
            await session.screencast.follow(page)
            page.once("close", lambda _: self._follow_current(session))
            if spec.record:
                session.recorder = ScreenRecorder(
                    warm.folder / "frames", screen.width, screen.height
                )
                await session.screencast.record_to(session.recorder.add)
            warm.browser.context.on("page", lambda new_page: self._follow(session, new_page))
        except BaseException:
            await warm.resources.aclose()
            await asyncio.to_thread(shutil.rmtree, warm.folder, True)
            raise
        return session

    def _follow(self, session: OpenSession, page: Page) -> None:
        """A page the client opened becomes the current one (cast live and recorded)."""
        session.browser.selected = None
        # When it closes, the newest page left is current again: cast that one at once,
        # not only at the next command (a live view would show nothing until then).
        page.once("close", lambda _: self._follow_current(session))
        session.in_background(session.screencast.follow(page))

    def _follow_current(self, session: OpenSession) -> None:
        """Casts the session's current page, if it has one open."""
        page = session.browser.current_page()
        if page is not None and not session.closing:
            session.in_background(session.screencast.follow(page))


def _seconds_until(expire_time: Timestamp) -> float:
    return max(0.0, expire_time.ToDatetime().timestamp() - time.time())
