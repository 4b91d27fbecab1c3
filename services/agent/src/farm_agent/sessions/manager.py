"""The agent's sessions from open to close: browsers, routes for the edge, clocks, events.

A session opens when the scheduler orders it (NATS request), takes one of the
agent's places, and lives until it is closed: by the user, by its idle timeout or
maximum lifetime (checked every `session_check_seconds`), when its browser dies,
or when the agent drains. Closing ends its clients' sockets with a reason, stores
its recording, removes its route from `farm_sessions` and publishes SessionClosed,
which the scheduler applies to the session's row.
"""

import asyncio
import collections
import contextlib
import logging
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable

from google.protobuf.timestamp_pb2 import Timestamp
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page

from farm.queue.v1 import queue_pb2
from farm_agent.browser.observers import ContextObserver
from farm_agent.browser.pool import BrowserPool
from farm_agent.errors import TaskFailure, is_crash
from farm_agent.media.recorder import RecordingLimits, ScreenRecorder
from farm_agent.media.screencast import Screencast
from farm_agent.places import Places
from farm_agent.saved.keeper import CaptureKeeper
from farm_agent.saved.profiles import load_profile
from farm_agent.sessions.dialogs import SessionDialogs
from farm_agent.sessions.leftovers import save_profile, store_recording, store_screencast
from farm_agent.sessions.notices import forget_route, publish_closed
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
from farm_core.sessions import CloseReason, Refusal

log = logging.getLogger(__name__)

REMEMBERED_CLOSES = 1024
"""Closed sessions whose end the agent remembers, to answer late orders for them."""


class SessionRefused(Exception):
    """An order this agent cannot carry out; `code` and the message go back to the scheduler.

    For a session that closed (or is closing) here, `closed` tells how it ended.
    """

    def __init__(
        self, code: Refusal, message: str, closed: queue_pb2.SessionClosed | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.closed = closed


class SessionManager:
    """Opens, holds and closes the sessions whose browsers run on this agent."""

    def __init__(
        self,
        settings: AgentSettings,
        pool: BrowserPool,
        places: Places,
        keeper: CaptureKeeper,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._keeper = keeper
        self._places = places
        self._clock = clock
        self._sessions: dict[str, OpenSession] = {}
        self._closing: dict[str, asyncio.Task[queue_pb2.SessionClosed]] = {}
        self._recently_closed: collections.OrderedDict[str, queue_pb2.SessionClosed] = (
            collections.OrderedDict()
        )
        self._changed = asyncio.Condition()
        self._draining = False
        self._js: JetStreamContext | None = None
        self._routes: KeyValue | None = None
        self.endpoint = ""
        # Told when a session opens or closes: the heartbeat says so at once.
        self.on_change: Callable[[], Awaitable[None]] | None = None
        self._sessions_root = pool.scratch_dir / "sessions"
        self._screencast_limits = RecordingLimits.of_screencasts(settings)
        self._spares = SpareBrowsers(
            lambda folder: start_browser(pool, settings, DEFAULT_SCREEN, folder),
            self._sessions_root,
            settings.session_spare_browsers,
            settings.session_spare_keep_seconds,
        )

    @property
    def session_ids(self) -> list[str]:
        """The sessions open here now."""
        return list(self._sessions)

    @property
    def draining(self) -> bool:
        """Whether new sessions are refused."""
        return self._draining

    @property
    def spares_ready(self) -> int:
        """How many spare browsers are started and connected, waiting for a session."""
        return self._spares.ready

    def attach(self, js: JetStreamContext, routes: KeyValue, endpoint: str) -> None:
        """Where events go, where routes are written, and the endpoint Envoy reaches.

        The spare browsers start then, in the background.
        """
        self._js = js
        self._routes = routes
        self.endpoint = endpoint
        self._spares.fill()

    def find(self, session_id: str) -> OpenSession | None:
        """The session open here with this id."""
        return self._sessions.get(session_id)

    async def held(self, session_id: str, tenant: str) -> OpenSession:
        """The tenant's session open here; SessionRefused(SESSION_NOT_FOUND) otherwise.

        A session that is closing is waited for; the refusal then carries how it
        ended, as it does for one that closed here lately.
        """
        session = self._sessions.get(session_id)
        if session is not None and session.tenant == tenant and not session.closing:
            return session
        closing = self._closing.get(session_id)
        closed = await asyncio.shield(closing) if closing is not None else None
        closed = closed or self._recently_closed.get(session_id)
        if closed is not None and closed.tenant != tenant:
            closed = None
        message = f"session {session_id} is not open here"
        raise SessionRefused(Refusal.SESSION_NOT_FOUND, message, closed)

    async def open(self, order: queue_pb2.OpenSessionOrder) -> None:
        """Opens the ordered session; a repeated order for an open one changes nothing."""
        if order.session_id in self._sessions:
            return
        if self._draining:
            raise SessionRefused(Refusal.AGENT_DRAINING, f"agent {self._settings.id} is draining")
        if not await self._places.take_for_session(self._settings.session_place_wait_seconds):
            raise SessionRefused(
                Refusal.NO_CAPACITY, f"agent {self._settings.id} has no free place for a session"
            )
        try:
            session = await self._launch(order)
        except BaseException:
            await self._places.give_back(session=True)
            raise
        async with self._changed:
            self._sessions[order.session_id] = session
            self._changed.notify_all()
        try:
            await self._write_route(session)
        except BaseException:
            await self.close(session, CloseReason.BROWSER_CRASHED)
            raise
        await self._tell_change()
        log.info(
            "session %s opened for tenant %s (record=%s)",
            session.session_id,
            session.tenant,
            session.spec.record,
        )

    async def close(self, session: OpenSession, reason: CloseReason) -> queue_pb2.SessionClosed:
        """Closes a session once, however many ask; all get the same SessionClosed."""
        task = self._closing.get(session.session_id)
        if task is None:
            session.closing = True
            task = asyncio.create_task(self._close(session, reason))
            self._closing[session.session_id] = task
        return await asyncio.shield(task)

    async def close_due(self) -> None:
        """Closes every session that is idle too long, too old, or whose browser died."""
        for session in list(self._sessions.values()):
            reason = session.due_reason()
            if reason is not None and not session.closing:
                log.info("session %s closes: %s", session.session_id, reason.value)
                await self.close(session, reason)

    async def drain(self, grace_seconds: float) -> None:
        """Refuses new sessions, waits up to the grace for open ones, then closes them."""
        self._draining = True
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_seconds):
                    await self._changed.wait_for(lambda: not self._sessions)
        await self._spares.close()
        left = list(self._sessions.values())
        for session in left:
            await self.close(session, CloseReason.AGENT_DRAINING)
        if left:
            log.info("drained: %d session(s) closed (AGENT_DRAINING)", len(left))

    async def _launch(self, order: queue_pb2.OpenSessionOrder) -> OpenSession:
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

    async def _write_route(self, session: OpenSession) -> None:
        if self._routes is None:
            raise RuntimeError("the session manager is not attached to NATS")
        route = queue_pb2.SessionRoute(
            session_id=session.session_id,
            tenant=session.tenant,
            agent_id=self._settings.id,
            endpoint=self.endpoint,
        )
        await self._routes.put(session.session_id, route.SerializeToString())

    async def _close(self, session: OpenSession, reason: CloseReason) -> queue_pb2.SessionClosed:
        closed = queue_pb2.SessionClosed(
            event_id=uuid.uuid4().hex,
            session_id=session.session_id,
            tenant=session.tenant,
            agent_id=self._settings.id,
            reason=reason.value,
            commands=session.commands,
        )
        try:
            await forget_route(self._routes, session.session_id)
            await session.end_clients(reason)
            session.dialogs.stop()
            await session.screencast.close()
            for task in list(session.background):
                task.cancel()
            if session.spec.profile and session.browser.alive:
                await save_profile(self._keeper, session)
            await session.resources.aclose()
            recording = await store_recording(self._keeper, session)
            if recording is not None:
                closed.recording.CopyFrom(recording)
            await store_screencast(self._keeper, session)
            closed.time.GetCurrentTime()
            await publish_closed(self._js, closed)
        finally:
            await asyncio.to_thread(shutil.rmtree, session.folder, True)
            async with self._changed:
                self._sessions.pop(session.session_id, None)
                self._closing.pop(session.session_id, None)
                self._remember(closed)
                self._changed.notify_all()
            await self._places.give_back(session=True)
        await self._tell_change()
        log.info(
            "session %s closed (%s) after %d command(s)",
            session.session_id,
            reason.value,
            session.commands,
        )
        return closed

    async def _tell_change(self) -> None:
        if self.on_change is not None:
            await self.on_change()

    def _remember(self, closed: queue_pb2.SessionClosed) -> None:
        """Keeps how a session ended, for orders that come after its close."""
        self._recently_closed[closed.session_id] = closed
        while len(self._recently_closed) > REMEMBERED_CLOSES:
            self._recently_closed.popitem(last=False)


def _seconds_until(expire_time: Timestamp) -> float:
    return max(0.0, expire_time.ToDatetime().timestamp() - time.time())
