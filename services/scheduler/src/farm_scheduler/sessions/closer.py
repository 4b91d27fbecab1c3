"""How sessions end, as the scheduler records it: ordered closes, agents' reports, lost agents.

Every way a session ends comes here: CloseSession (ordered to its agent, whose reply
carries the SessionClosed), the agents' SessionClosed events (idle, lifetime, crash,
drain), and the sweep that finds sessions whose agent stopped beating (AGENT_LOST)
or that outlived their lifetime, and, the other way round, browsers that agents hold
for no open session (unclaimed.py). Applying a close twice changes nothing. The
sweep's closes run beside it, a few at once (sweep_closes.py), so that one agent
slow to answer a close holds up neither the others nor the next sweep. The sweep
also forgets the sessions that a scheduler which died while placing them left being
placed, so that they stop counting against their tenant's open-session quota.

A close's route goes with it, removed here (agents do not touch routes): as the
scheduler records a close it removes the route, by the revision it read, if it still
names the closing agent and the session is closed or gone: never the route of a
session being placed or open (an abandoned browser's close leaves the route of the
agent that holds the session). A closed or forgotten session never opens again, so
whichever replica removes the route, and however late, removes no live one. A close
an agent's answer carries removes it at once, best effort; every close an agent
makes also comes as its SessionClosed event, and an event whose route could not be
removed is applied again later. A lost agent's sessions' routes go as they are
closed (AGENT_LOST), best effort; should its agent be alive after all, its close of
the browser (ordered once the sweep finds it unclaimed) removes the route too.
"""

import datetime as dt
import functools
import logging
import time
from collections.abc import Awaitable, Callable

from farm.queue.v1 import queue_pb2
from farm_core.db import utcnow
from farm_core.errors import Unavailable
from farm_core.sessions import CloseReason
from farm_core.timestamps import from_timestamp
from farm_scheduler.heartbeats import Heartbeats
from farm_scheduler.metrics import session_reservations_forgotten, unclaimed_session_closes
from farm_scheduler.sessions.orders import (
    AgentGarbled,
    AgentGone,
    AgentOrders,
    AgentSilent,
    OrderNotSent,
    close_order,
)
from farm_scheduler.sessions.placement import Ranking, candidates
from farm_scheduler.sessions.records import SessionRecord
from farm_scheduler.sessions.reported import ReportedCloses
from farm_scheduler.sessions.routes import SessionRoutes
from farm_scheduler.sessions.store import SessionStore
from farm_scheduler.sessions.sweep_closes import SweepCloses
from farm_scheduler.sessions.unclaimed import HeldBrowser, UnclaimedWatch, unclaimed_close

log = logging.getLogger(__name__)

LIFETIME_GRACE_SECONDS = 60.0
"""How long past its lifetime a session may stay ACTIVE before the sweep ends it."""

RESERVATION_MARGIN_SECONDS = 60.0
"""How much older than the place timeout a session still being placed may be before the
sweep forgets it: its create time is read on its replica's clock and compared with the
sweeping replica's (clocks of replicas differ by a little, far less than this), and the
CreateSession's last statement (its agent recorded, or the session forgotten) may wait
for a busy database."""


class SessionCloser:
    """Records sessions' closes; finds the sessions of lost agents."""

    def __init__(
        self,
        store: SessionStore,
        orders: AgentOrders,
        heartbeats: Heartbeats,
        routes: SessionRoutes,
        agent_lost_seconds: float,
        unclaimed_grace_seconds: float,
        place_timeout_seconds: float,
        reports: ReportedCloses | None = None,
    ) -> None:
        self._store = store
        self._reports = reports
        self._orders = orders
        self._heartbeats = heartbeats
        self._routes = routes
        self._agent_lost_seconds = agent_lost_seconds
        self._unclaimed = UnclaimedWatch(unclaimed_grace_seconds)
        self._unclaimed_grace_seconds = unclaimed_grace_seconds
        self._reservation_seconds = place_timeout_seconds + RESERVATION_MARGIN_SECONDS
        self._sweep_closes = SweepCloses()

    async def candidates(self, region: str) -> Ranking:
        """The agents that may take a new session in `region`, best first.

        Free places count the sessions in the heartbeats and in the sessions table
        (placement.py); this replica's placements the table's read missed are
        `Openings`' to count.
        """
        read_at = time.monotonic()
        placed = await self._store.open_by_agent()
        beats = await self._heartbeats.all()
        ranked = candidates(beats.values(), placed, region, utcnow(), self._agent_lost_seconds)
        return Ranking(ranked, read_at)

    async def close_on_agent(self, record: SessionRecord, reason: CloseReason) -> SessionRecord:
        """Asks the session's agent to close it and records the close; a gone agent is lost."""
        try:
            reply = await self._orders.close(
                record.agent_id, close_order(record.id, record.tenant, reason)
            )
        except AgentGone as gone:
            return await self.agent_lost(record, str(gone))
        except (AgentSilent, AgentGarbled, OrderNotSent) as error:
            raise Unavailable(f"session {record.id}: {error}") from error
        if reply.HasField("closed"):
            return await self.apply_reply(reply.closed, record) or record
        return await self.settle_missing(record)

    async def settle_missing(self, record: SessionRecord) -> SessionRecord:
        """A session its agent knows nothing of (it restarted): lost, unless closed meanwhile."""
        current = await self._store.get(record.tenant, record.id)
        if not current.active:
            return current
        closed = await self._store.close(record.id, CloseReason.AGENT_LOST.value)
        await self._remove_route_quietly(record.id, record.agent_id)
        return closed or current

    async def agent_unreachable(self, record: SessionRecord, why: str) -> SessionRecord:
        """A session whose agent did not listen to an order: lost only if it stopped beating.

        An agent that beats is alive and may be reconnecting to NATS: its session is kept
        (the sweep closes it should the beats stop).
        """
        if self._beat_is_stale(await self._heartbeats.get(record.agent_id), utcnow()):
            return await self.agent_lost(record, f"{why}, and no heartbeat either")
        log.warning(
            "session %s: its agent %s did not listen (%s) but still beats; the session stays",
            record.id,
            record.agent_id,
            why,
        )
        return record

    async def agent_lost(self, record: SessionRecord, why: str) -> SessionRecord:
        """Closes a session whose agent is gone (AGENT_LOST)."""
        log.warning("session %s: its agent %s is lost: %s", record.id, record.agent_id, why)
        closed = await self._store.close(record.id, CloseReason.AGENT_LOST.value)
        await self._remove_route_quietly(record.id, record.agent_id)
        return closed or record

    async def apply(self, closed: queue_pb2.SessionClosed, held_by: str) -> SessionRecord | None:
        """Records a SessionClosed (from an agent's reply or event) by agent `held_by`.

        Only a session that agent holds closes. The route the close leaves goes in
        apply_reply and apply_event.
        """
        close_time = from_timestamp(closed.time) if closed.HasField("time") else None
        record = await self._store.close(
            closed.session_id,
            closed.reason or CloseReason.BROWSER_CLOSED.value,
            close_time=close_time,
            recording=closed.recording if closed.HasField("recording") else None,
            commands=closed.commands,
            reported=True,
            agent_id=held_by,
        )
        return record

    async def apply_reply(
        self, closed: queue_pb2.SessionClosed, record: SessionRecord
    ) -> SessionRecord | None:
        """Records the SessionClosed that `record`'s agent's answer to an order for it carried.

        The answer speaks of that session only, whatever id it names: an agent's answer
        must close no session it was not asked about (another tenant's, another agent's).
        The route the close leaves goes at once (best effort: its event removes it too),
        so that it does not outlive the session should that event be lost.
        """
        own = queue_pb2.SessionClosed()
        own.CopyFrom(closed)
        own.session_id = record.id
        applied = await self.apply(own, held_by=record.agent_id)
        if applied is None or not applied.active:
            await self._remove_route_quietly(record.id, record.agent_id)
        return applied

    async def as_reported(self, record: SessionRecord) -> SessionRecord:
        """The ACTIVE session as its agent last reported it: closed, if it reported a close.

        The agent reports a close before it ends the session's sockets; the report is
        applied here if the event consumer has not applied it yet.
        """
        if not record.active or not record.agent_id or self._reports is None:
            return record
        closed = await self._reports.last(record.id, record.agent_id)
        if closed is None:
            return record
        applied = await self.apply(closed, held_by=record.agent_id)
        if applied is None:
            return record
        if not applied.active:
            await self._remove_route_quietly(record.id, record.agent_id)
        return applied

    async def apply_event(self, closed: queue_pb2.SessionClosed) -> None:
        """Records an agent's SessionClosed event, then removes the route its close left.

        Only a session that agent holds closes; the route goes only once the session is
        closed or gone, and only while it names that agent. Unavailable if NATS would
        not remove it: the event is applied again later.
        """
        record = await self.apply(closed, held_by=closed.agent_id)
        if record is None or not record.active:
            await self._routes.remove_left(closed.session_id, closed.agent_id)

    async def sweep(self) -> None:
        """Closes ACTIVE sessions whose agent stopped beating or that outlived their lifetime.

        First forgets the sessions left being placed for too long; then closes the
        browsers agents hold that no open session on them claims. The closes run in
        the background: a session whose close is under way is skipped.
        """
        await self._forget_reservations(utcnow())
        beats = await self._heartbeats.all()
        now = utcnow()
        active = await self._store.active()
        for record in active:
            close = self._due_close(record, beats.get(record.agent_id), now)
            if close is not None:
                self._sweep_closes.start(record.id, close)
        claimed = {HeldBrowser(record.agent_id, record.id) for record in active}
        held = [
            HeldBrowser(agent_id, session_id)
            for agent_id, heartbeat in beats.items()
            if not self._beat_is_stale(heartbeat, now)
            for session_id in heartbeat.session_ids
        ]
        overdue = self._unclaimed.overdue(browser for browser in held if browser not in claimed)
        if overdue:
            await self._close_unclaimed(overdue)

    async def stop(self, grace_seconds: float) -> None:
        """Waits up to the grace for the sweep's closes under way, then cancels the rest."""
        await self._sweep_closes.stop(grace_seconds)

    def _due_close(
        self, record: SessionRecord, heartbeat: queue_pb2.AgentHeartbeat | None, now: dt.datetime
    ) -> Callable[[], Awaitable[SessionRecord]] | None:
        """How the sweep closes this ACTIVE session now, or None if it stays open."""
        age = (now - record.create_time).total_seconds()
        if heartbeat is None:
            why = "its heartbeat is gone (it stopped, or expired)"
            return functools.partial(self.agent_lost, record, why)
        if self._beat_is_stale(heartbeat, now):
            why = f"no heartbeat for {self._agent_lost_seconds:g} s"
            return functools.partial(self.agent_lost, record, why)
        if record.id not in heartbeat.session_ids and age > 2 * self._agent_lost_seconds:
            # Its agent beats without it: it restarted, or the close's event was lost.
            return functools.partial(self.settle_missing, record)
        if now > record.expire_time + dt.timedelta(seconds=LIFETIME_GRACE_SECONDS):
            return functools.partial(self.close_on_agent, record, CloseReason.MAX_LIFETIME)
        return None

    async def _remove_route_quietly(self, session_id: str, agent_id: str) -> None:
        """Removes a closed session's route while it names `agent_id`; best effort."""
        try:
            await self._routes.remove_left(session_id, agent_id)
        except Unavailable as error:
            log.warning("%s", error)

    async def _forget_reservations(self, now: dt.datetime) -> None:
        """Forgets the sessions still being placed long after any CreateSession gives up.

        Their scheduler died while placing them; no call ever showed them, so they are
        removed (as CreateSession removes one no agent takes), not closed.
        """
        created_before = now - dt.timedelta(seconds=self._reservation_seconds)
        for record in await self._store.forget_reservations(created_before):
            log.warning(
                "session %s of tenant %r: still being placed %.0f s after it was created, "
                "longer than any CreateSession looks for an agent (its scheduler died?); "
                "forgotten, freeing its place in the tenant's open-session quota",
                record.id,
                record.tenant,
                (now - record.create_time).total_seconds(),
            )
            session_reservations_forgotten.inc()

    async def _close_unclaimed(self, browsers: list[HeldBrowser]) -> None:
        """Orders each browser closed on its agent, unless its session claims it by now."""
        rows = await self._store.by_ids(browser.session_id for browser in browsers)
        for browser in browsers:
            row = rows.get(browser.session_id)
            close = unclaimed_close(browser, row)
            if close is None:
                continue
            tenant = (
                row.tenant if row is not None else await self._routes.tenant(browser.session_id)
            )
            if not tenant:
                log.warning(
                    "session %s: agent %s holds its browser, unclaimed (%s), but neither a "
                    "session row nor a route names its tenant; its idle timeout closes it",
                    browser.session_id,
                    browser.agent_id,
                    close.why.value,
                )
                continue
            log.warning(
                "session %s: agent %s has held its browser for over %g s with no open session "
                "there claiming it (%s); ordering it closed (%s)",
                browser.session_id,
                browser.agent_id,
                self._unclaimed_grace_seconds,
                close.why.value,
                close.reason.value,
            )
            unclaimed_session_closes.labels(close.why.value).inc()
            order = close_order(browser.session_id, tenant, close.reason)
            await self._orders.tell_close(browser.agent_id, order)

    def _beat_is_stale(self, heartbeat: queue_pb2.AgentHeartbeat | None, now: dt.datetime) -> bool:
        if heartbeat is None:
            return True
        if not heartbeat.HasField("heartbeat_time"):
            return False
        age = (now - from_timestamp(heartbeat.heartbeat_time)).total_seconds()
        return age > self._agent_lost_seconds
