"""The agent's sessions from open to close: browsers, places, clocks, events.

A session opens when the scheduler orders it (NATS request), takes one of the
agent's places, and lives until it is closed: by the user, by its idle timeout or
maximum lifetime (checked every `session_check_seconds`), when its browser dies,
or when the agent drains. Closing ends its clients' sockets with a reason, stores
its recording and publishes SessionClosed, which the scheduler applies to the
session's row (removing the session's route, which only the scheduler writes).
"""

import asyncio
import collections
import contextlib
import logging
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable

from cachetools import TTLCache
from nats.js import JetStreamContext

from farm.queue.v1 import queue_pb2
from farm_agent.browser.pool import BrowserPool
from farm_agent.places import Places
from farm_agent.saved.keeper import CaptureKeeper
from farm_agent.sessions.launcher import SessionLauncher
from farm_agent.sessions.leftovers import close_keeping, discard, wind_down
from farm_agent.sessions.notices import publish_closed, report_closing
from farm_agent.sessions.session import OpenSession
from farm_agent.sessions.warm import (
    DEFAULT_SCREEN,
    SpareBrowsers,
    start_browser,
)
from farm_agent.settings import AgentSettings
from farm_agent.traces import SessionTraces
from farm_core.sessions import CloseReason, Refusal

log = logging.getLogger(__name__)

WITHDRAWN_SECONDS = 300.0
"""How long a withdrawn session opening is remembered: longer than any open order waits."""
WITHDRAWN_KEPT = 4096
"""The most withdrawn openings remembered at once."""
REMEMBERED_CLOSES = 1024
"""Closed sessions whose end the agent remembers, to answer late orders for them."""
CLOSES_AT_ONCE = 8
"""How many of the agent's own closes (clocks, drain) run at the same time."""


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
        self.traces = SessionTraces()
        """Each open session's trace, for the spans of its orders and of its close."""
        self._recently_closed: collections.OrderedDict[str, queue_pb2.SessionClosed] = (
            collections.OrderedDict()
        )
        # Sessions whose opening the scheduler withdrew (it stopped waiting): the close may
        # come before the open order or while the browser opens; kept longer than any
        # open order waits, the oldest dropped first past WITHDRAWN_KEPT.
        self._withdrawn: TTLCache[tuple[str, str], None] = TTLCache(
            WITHDRAWN_KEPT, WITHDRAWN_SECONDS, timer=clock
        )
        self._changed = asyncio.Condition()
        # The clocks' and the drain's closes run side by side, a few at once: one slow
        # close (a long recording's encode) holds up no other session's.
        self._close_turns = asyncio.Semaphore(CLOSES_AT_ONCE)
        self._due_closes: dict[str, asyncio.Task[None]] = {}
        self._draining = False
        self._js: JetStreamContext | None = None
        self.endpoint = ""
        # Told when a session opens or closes (it takes or frees a place, which Places
        # does not tell): the heartbeat says so at once, before the order is answered.
        self.on_change: Callable[[], Awaitable[None]] | None = None
        sessions_root = pool.scratch_dir / "sessions"
        self._spares = SpareBrowsers(
            lambda folder: start_browser(pool, settings, DEFAULT_SCREEN, folder),
            sessions_root,
            settings.session_spare_browsers,
            settings.session_spare_keep_seconds,
        )
        self._launcher = SessionLauncher(settings, pool, keeper, self._spares, sessions_root, clock)

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

    def attach(self, js: JetStreamContext, endpoint: str) -> None:
        """Where events go, and the endpoint Envoy reaches (each open's answer names it).

        The spare browsers start then, in the background.
        """
        self._js = js
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
        """Opens the ordered session; a repeated order for an open one changes nothing.

        A browser not open within the order's answer_within_ms (from now, by this
        agent's clock: the scheduler stops waiting then), or whose opening was
        withdrawn, is closed again at once and the order refused (OPEN_TOO_LATE):
        otherwise it would hold a place, known to no one, until its idle timeout.
        """
        if order.session_id in self._sessions:
            return
        within = order.answer_within_ms / 1000 if order.answer_within_ms else None
        deadline = self._clock() + within if within is not None else None
        if (order.session_id, order.tenant) in self._withdrawn:
            raise SessionRefused(Refusal.OPEN_TOO_LATE, f"session {order.session_id} withdrawn")
        if self._draining:
            raise SessionRefused(Refusal.AGENT_DRAINING, f"agent {self._settings.id} is draining")
        place_wait = self._settings.session_place_wait_seconds
        if not await self._places.take_for_session(min(place_wait, within or place_wait)):
            raise SessionRefused(
                Refusal.NO_CAPACITY, f"agent {self._settings.id} has no free place for a session"
            )
        try:
            session = await self._launcher.launch(order)
        except BaseException:
            await self._places.give_back(session=True)
            raise
        async with self._changed:
            # No await between this check and the session's entry: a withdrawal that
            # comes later finds the session held, and closes it.
            late = self._late(order, deadline)
            if late is None:
                self._sessions[order.session_id] = session
                self._changed.notify_all()
        if late is not None:
            await self._discard(session)
            log.warning("session %s: closed as it opened: %s", session.session_id, late)
            raise SessionRefused(Refusal.OPEN_TOO_LATE, late)
        await self._tell_change()
        log.info(
            "session %s opened for tenant %s (record=%s)",
            session.session_id,
            session.tenant,
            session.spec.record,
        )

    def withdraw(self, session_id: str, tenant: str) -> None:
        """The scheduler gave up on opening this session: an opening of it ends closed."""
        self._withdrawn[(session_id, tenant)] = None

    async def close(
        self, session: OpenSession, reason: CloseReason, *, ordered: bool = False
    ) -> queue_pb2.SessionClosed:
        """Closes a session once, however many ask; all get the same SessionClosed.

        A close not `ordered` by the scheduler (whose order has its own span) gets a
        `session.close` span in the session's trace.
        """
        task = self._closing.get(session.session_id)
        ended = self._recently_closed.get(session.session_id)
        if task is None and session.closing and ended is not None:
            # Closed already (a command that failed as the close ended asks again): a
            # second close would give its place back twice and report it twice.
            return ended
        if task is None:
            session.closing = True
            closing = self._close(session, reason) if ordered else self._own_close(session, reason)
            task = asyncio.create_task(closing)
            self._closing[session.session_id] = task
        return await asyncio.shield(task)

    async def close_due(self) -> None:
        """Starts closing every session that is idle too long, too old, or whose browser died.

        The closes run in the background, side by side (CLOSES_AT_ONCE at a time): the
        clocks' next check does not wait for a slow one, and a session still closing
        is left alone.
        """
        for session in list(self._sessions.values()):
            reason = session.due_reason()
            if reason is None or session.closing or session.session_id in self._due_closes:
                continue
            log.info("session %s closes: %s", session.session_id, reason.value)
            self._start_close(session, reason)

    def _start_close(self, session: OpenSession, reason: CloseReason) -> asyncio.Task[None]:
        """Closes the session in a task of its own, waiting for a turn; errors are logged."""
        session_id = session.session_id
        task = self._due_closes.get(session_id)
        if task is None:
            task = asyncio.create_task(self._close_in_turn(session, reason))
            self._due_closes[session_id] = task
            task.add_done_callback(lambda _: self._due_closes.pop(session_id, None))
        return task

    async def _close_in_turn(self, session: OpenSession, reason: CloseReason) -> None:
        async with self._close_turns:
            try:
                await self.close(session, reason)
            except Exception:
                # The others go on; _close gave its place back whatever failed.
                log.exception(
                    "session %s: closing it (%s) failed", session.session_id, reason.value
                )

    async def drain(self, grace_seconds: float) -> None:
        """Refuses new sessions, waits up to the grace for open ones, then closes them."""
        self._draining = True
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_seconds):
                    await self._changed.wait_for(lambda: not self._sessions)
        await self._spares.close()
        left = list(self._sessions.values())
        closes = [self._start_close(session, CloseReason.AGENT_DRAINING) for session in left]
        # Closes the clocks started before the drain are waited for too.
        await asyncio.gather(*closes, *list(self._due_closes.values()))
        if left:
            log.info("drained: %d session(s) closed (AGENT_DRAINING)", len(left))

    def _late(self, order: queue_pb2.OpenSessionOrder, deadline: float | None) -> str | None:
        """Why the session that just opened must not stay open, or None if it may."""
        if (order.session_id, order.tenant) in self._withdrawn:
            return "the scheduler withdrew its opening"
        if deadline is not None and self._clock() > deadline:
            return (
                f"it took longer than the {order.answer_within_ms} ms the scheduler waits "
                "for the answer"
            )
        return None

    async def _discard(self, session: OpenSession) -> None:
        """Closes a session that never opened for anyone and gives its place back.

        Its place was never told (it is told once the session is listed): nothing to tell.
        """
        try:
            await discard(session)
        finally:
            await self._places.give_back(session=True)

    async def _own_close(
        self, session: OpenSession, reason: CloseReason
    ) -> queue_pb2.SessionClosed:
        with self.traces.closing(session.session_id):
            return await self._close(session, reason)

    async def _close(self, session: OpenSession, reason: CloseReason) -> queue_pb2.SessionClosed:
        closed = queue_pb2.SessionClosed(
            event_id=uuid.uuid4().hex,
            session_id=session.session_id,
            tenant=session.tenant,
            agent_id=self._settings.id,
            reason=reason.value,
            commands=session.commands,
        )
        closing = queue_pb2.SessionClosed()
        closing.CopyFrom(closed)
        closing.event_id = uuid.uuid4().hex
        closing.time.GetCurrentTime()
        try:
            if session.recorder is None:
                # Reported before the sockets end: a client that saw the close frame
                # then finds the session closed (GetSession reads the last report). A
                # recording session is reported once its video is stored, so that a
                # CLOSED session always names its recording.
                await report_closing(self._js, closing)
            await session.end_clients(reason)
            await wind_down(session)
            if reason is CloseReason.OPEN_ABANDONED:
                # Opened for no session (the scheduler gave up on it): nothing is kept.
                await session.resources.aclose()
            else:
                recording = await close_keeping(self._keeper, session)
                if recording is not None:
                    closed.recording.CopyFrom(recording)
            closed.time.GetCurrentTime()
            await publish_closed(self._js, closed)
        finally:
            await asyncio.to_thread(shutil.rmtree, session.folder, True)
            async with self._changed:
                self._sessions.pop(session.session_id, None)
                self._closing.pop(session.session_id, None)
                self._remember(closed)
                self.traces.forget(session.session_id)
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
