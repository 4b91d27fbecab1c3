"""farm.sessions.v1.SessionService handlers: validate, act on the session and its agent, answer."""

import asyncio
import logging
from typing import Any

from farm.queue.v1 import queue_pb2
from farm.sessions.v1 import sessions_pb2, sessions_pb2_grpc
from farm.tasks.v1 import tasks_pb2
from farm_core.db import utcnow
from farm_core.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)
from farm_core.identity import current_identity
from farm_core.outages import outage
from farm_core.paging import Cursor, read_page
from farm_core.quotas import TenantQuotas
from farm_core.scopes import Scope
from farm_core.sessions import CloseReason, Refusal
from farm_core.timestamps import to_timestamp
from farm_scheduler.grants import Grants
from farm_scheduler.sessions.closer import SessionCloser
from farm_scheduler.sessions.links import session_links
from farm_scheduler.sessions.orders import (
    AgentGarbled,
    AgentGone,
    AgentOrders,
    AgentSilent,
    OrderNotSent,
    OrderTooLarge,
)
from farm_scheduler.sessions.placement import Candidate, Openings, refusal_note
from farm_scheduler.sessions.records import SessionRecord
from farm_scheduler.sessions.routes import SessionRoutes
from farm_scheduler.sessions.store import ReservationGone, SessionStore
from farm_scheduler.sessions.tokens import SessionTokens
from farm_scheduler.sessions.validation import (
    SessionBounds,
    checked_session_id,
    validate_command,
    validate_session_spec,
)
from farm_scheduler.settings import SchedulerSettings
from farm_scheduler.validation import runs_script

log = logging.getLogger(__name__)

# A command's answer may take this long beyond its own time limit (uploads, the hop).
COMMAND_ANSWER_MARGIN_SECONDS = 10.0
# Refusals after which the next agent is tried; others are the caller's to fix.
TRY_NEXT_AGENT = frozenset(
    {Refusal.NO_CAPACITY, Refusal.AGENT_DRAINING, Refusal.INTERNAL, Refusal.OPEN_TOO_LATE}
)
# Codes of a fault of the farm (an agent's bug, an order it could not read), not the caller's.
FARM_FAULTS = frozenset({Refusal.INTERNAL, Refusal.INVALID_ORDER, "UNKNOWN"})


def command_error(error: tasks_pb2.TaskError) -> Exception:
    """The gRPC error a failed command answers with; the message starts with its code."""
    message = f"{error.code}: {error.message}"
    if error.code == "TIMEOUT":
        return DeadlineExceeded(message)
    if error.code == "RESULT_TOO_LARGE":
        return ResourceExhausted(message)
    if error.code in FARM_FAULTS:
        return Internal(message)
    if error.code == "UPLOAD_FAILED":
        # Storage was away: the same command will work once it is back.
        return Unavailable(message)
    return FailedPrecondition(message)


def too_large(field: str, refused: OrderTooLarge) -> InvalidArgument:
    """The caller's `field` makes an order that does not fit one NATS message to the agent."""
    return InvalidArgument(
        field,
        f"{refused.order_bytes / 2**20:.2f} MiB ({refused.order_bytes} bytes as an order to "
        f"the agent), over the {refused.max_payload / 2**20:g} MiB limit of one message to "
        f"an agent (NATS max_payload, {refused.max_payload} bytes); nothing was sent",
    )


class SessionApi(sessions_pb2_grpc.SessionServiceServicer):
    """farm.sessions.v1.SessionService: the caller's tenant's sessions."""

    def __init__(
        self,
        settings: SchedulerSettings,
        store: SessionStore,
        orders: AgentOrders,
        closer: SessionCloser,
        routes: SessionRoutes,
        live_token_secret: str,
        grants: Grants,
    ) -> None:
        self._settings = settings
        self._grants = grants
        self._store = store
        self._orders = orders
        self._closer = closer
        self._routes = routes
        self._openings = Openings()
        self._tokens = SessionTokens(
            live_token_secret,
            settings.public_url,
            settings.view_token_ttl_seconds,
            settings.cdp_token_ttl_seconds,
        )
        self._bounds = SessionBounds(
            default_idle_timeout_seconds=settings.session_idle_timeout_seconds,
            max_idle_timeout_seconds=settings.session_max_idle_timeout_seconds,
            default_max_lifetime_seconds=settings.session_lifetime_seconds,
            max_max_lifetime_seconds=settings.session_max_lifetime_seconds,
            min_seconds=settings.session_min_seconds,
        )

    async def CreateSession(
        self, request: sessions_pb2.CreateSessionRequest, context: Any
    ) -> sessions_pb2.Session:
        identity = current_identity()
        spec = validate_session_spec(request.spec, self._bounds)
        record = await self._store.reserve(identity.tenant, spec, identity.quotas)
        try:
            with self._openings.placing(record.id):
                placed = await self._place(record, identity.quotas)
        except OrderTooLarge as refused:
            await self._store.forget(record)
            raise too_large("spec", refused) from refused
        except BaseException:
            await self._store.forget(record)
            raise
        return self._answer(placed)

    async def GetSession(
        self, request: sessions_pb2.GetSessionRequest, context: Any
    ) -> sessions_pb2.Session:
        record = await self._store.get(current_identity().tenant, checked_session_id(request.id))
        # A close its agent reported counts at once: its sockets may have ended already.
        return self._answer(await self._closer.as_reported(record))

    async def ListSessions(
        self, request: sessions_pb2.ListSessionsRequest, context: Any
    ) -> sessions_pb2.ListSessionsResponse:
        if request.state not in sessions_pb2.SessionState.values():
            raise InvalidArgument("state", f"has no value {request.state}")
        tenant = current_identity().tenant
        page, next_token = await read_page(
            request,
            lambda limit, after: self._store.page(tenant, request.state, limit, after),
            lambda record: Cursor(record.create_time, record.id),
        )
        return sessions_pb2.ListSessionsResponse(
            sessions=[self._answer(record) for record in page], next_page_token=next_token
        )

    async def CloseSession(
        self, request: sessions_pb2.CloseSessionRequest, context: Any
    ) -> sessions_pb2.Session:
        tenant = current_identity().tenant
        record = await self._store.get(tenant, checked_session_id(request.id))
        if record.active:
            record = await self._closer.close_on_agent(record, CloseReason.CLOSED_BY_USER)
        return self._answer(record)

    async def RunSessionCommand(
        self, request: sessions_pb2.RunSessionCommandRequest, context: Any
    ) -> tasks_pb2.TaskResult:
        identity = current_identity()
        session_id = checked_session_id(request.id)
        if runs_script(request.command) and not identity.has_scope(Scope.SCRIPT):
            raise PermissionDenied(
                f"a command with a script or an evaluate step needs the scope "
                f"{Scope.SCRIPT.value!r}"
            )
        command = validate_command(request.command, self._settings.default_timeout_ms)
        record = await self._store.get(identity.tenant, session_id)
        self._require_active(record)
        timeout = command.timeout_ms / 1000 + COMMAND_ANSWER_MARGIN_SECONDS
        max_bytes = identity.quotas.max_artifact_bytes if identity.quotas is not None else 0
        order = queue_pb2.SessionCommandOrder(
            session_id=record.id,
            tenant=record.tenant,
            command=command,
            # Names the baseline the command compares with; the session's grant names none.
            grant=self._grants.for_command(record.id, record.tenant, max_bytes, command, timeout),
        )
        try:
            reply = await self._orders.run(record.agent_id, order, timeout)
        except OrderTooLarge as refused:
            raise too_large("command", refused) from refused
        except AgentGone as gone:
            self._require_active(await self._closer.agent_unreachable(record, str(gone)))
            raise Unavailable(
                f"session {record.id}: {gone}, though it sent a heartbeat within "
                f"{self._settings.session_agent_lost_seconds:g} s (it may be reconnecting to "
                "NATS); the session stays open: try again"
            ) from gone
        except AgentGarbled as garbled:
            raise Unavailable(
                f"session {record.id}: {garbled}; the command may have run; the session stays open"
            ) from garbled
        except AgentSilent as silent:
            raise DeadlineExceeded(f"session {record.id}: {silent}") from silent
        except OrderNotSent as unsent:
            raise Unavailable(f"session {record.id}: {unsent}; try again") from unsent
        if reply.HasField("error"):
            if reply.error.code == Refusal.SESSION_NOT_FOUND:
                # The agent closed it (idle, lifetime): its reply says how.
                if reply.HasField("closed"):
                    closed = await self._closer.apply_reply(reply.closed, record)
                    self._require_active(closed)
                self._require_active(await self._closer.settle_missing(record))
            raise command_error(reply.error)
        await self._count(record)
        return reply.result

    async def CreateViewToken(
        self, request: sessions_pb2.CreateViewTokenRequest, context: Any
    ) -> sessions_pb2.ViewToken:
        identity = current_identity()
        record = await self._store.get(identity.tenant, checked_session_id(request.id))
        self._require_active(record)
        return self._tokens.view(record, identity)

    async def CreateCdpToken(
        self, request: sessions_pb2.CreateCdpTokenRequest, context: Any
    ) -> sessions_pb2.CdpToken:
        identity = current_identity()
        record = await self._store.get(identity.tenant, checked_session_id(request.id))
        self._require_active(record)
        return self._tokens.cdp(record, identity)

    async def _place(self, record: SessionRecord, quotas: TenantQuotas | None) -> SessionRecord:
        """Opens the session's browser on the best agent that takes it.

        Gives up (DeadlineExceeded) once the reservation is as old as the place timeout,
        telling the agent it was waiting for to close what it opens. The order carries
        the session's upload grant, with the tenant's byte quota.
        """
        spec = record.spec
        max_bytes = quotas.max_artifact_bytes if quotas is not None else 0
        order = queue_pb2.OpenSessionOrder(
            session_id=record.id,
            tenant=record.tenant,
            spec=spec,
            expire_time=to_timestamp(record.expire_time),
            upload_grant=self._grants.for_session(
                record.id, record.tenant, max_bytes, record.expire_time, utcnow(), spec.profile
            ),
        )
        refusals: list[str] = []
        # The reservation's age bounds the search, so that the sweep may forget one
        # left by a scheduler that died (SessionCloser.sweep).
        place_seconds = self._settings.session_place_timeout_seconds
        left = place_seconds - (utcnow() - record.create_time).total_seconds()
        deadline = asyncio.timeout(left)
        try:
            async with deadline:
                route = await self._open_anywhere(spec.region, order, refusals)
        except TimeoutError as late:
            if not deadline.expired():
                raise
            raise DeadlineExceeded(
                f"no agent opened the session within {place_seconds:g} s "
                "(FARM_SCHEDULER_SESSION_PLACE_TIMEOUT_SECONDS)"
                + (f" ({'; '.join(refusals)})" if refusals else "")
            ) from late
        placed = await self._record_placement(record, order, route)
        self._openings.recorded(record.id)
        return placed

    async def _record_placement(
        self,
        record: SessionRecord,
        order: queue_pb2.OpenSessionOrder,
        route: queue_pb2.SessionRoute,
    ) -> SessionRecord:
        """Claims the session's route for the agent that opened it, then records it placed.

        The claim replaces whatever is there (routes.py). The route comes first, so
        that the caller learns the session's id only once it is there. On any failure
        the agent is told to close the browser, and the route is removed again.
        """
        agent_id = route.agent_id
        try:
            revision = await self._routes.claim(route)
        except BaseException:
            await self._orders.withdraw(agent_id, order)
            raise
        try:
            return await self._store.placed(record, agent_id)
        except BaseException as error:
            await self._routes.release(record.id, revision)
            await self._orders.withdraw(agent_id, order)
            if not isinstance(error, ReservationGone):
                raise
            place_seconds = self._settings.session_place_timeout_seconds
            raise DeadlineExceeded(
                f"agent {agent_id} opened session {record.id} only after its reservation had "
                f"been given up as older than {place_seconds:g} s "
                "(FARM_SCHEDULER_SESSION_PLACE_TIMEOUT_SECONDS) and a margin; it is closed "
                "again; try again"
            ) from error

    async def _open_anywhere(
        self, region: str, order: queue_pb2.OpenSessionOrder, refusals: list[str]
    ) -> queue_pb2.SessionRoute:
        """The route to the best agent in `region` that opened the session; refusals noted."""
        ranking = await self._closer.candidates(region)
        tried: set[str] = set()
        while (candidate := self._openings.best(ranking, tried)) is not None:
            tried.add(candidate.agent_id)
            # Counts against it until opened on another agent, or given up (CreateSession).
            self._openings.opening(order.session_id, candidate.agent_id)
            reply = await self._open_on(candidate, order, refusals)
            if reply is not None:
                return queue_pb2.SessionRoute(
                    session_id=order.session_id,
                    tenant=order.tenant,
                    agent_id=candidate.agent_id,
                    endpoint=reply.endpoint,
                )
        where = f"in region {region!r}" if region else "in the farm"
        if not ranking.candidates:
            raise ResourceExhausted(
                f"no agent {where} takes sessions now: none is up (no recent heartbeat), "
                "or every one is draining"
            )
        raise ResourceExhausted(
            f"no agent {where} has a free place for a session"
            + (f" ({'; '.join(refusals)})" if refusals else "")
        )

    async def _open_on(
        self, candidate: Candidate, order: queue_pb2.OpenSessionOrder, refusals: list[str]
    ) -> queue_pb2.SessionReply | None:
        """The agent's reply if it opened the session; None (noted) if the next may try.

        An agent that may still be opening it when this stops waiting (no answer in
        time, an answer not understood, the caller gone) is told to close it.
        """
        try:
            reply = await self._orders.open(candidate.agent_id, order)
        except AgentGone as error:
            refusals.append(str(error))
            return None
        except (AgentSilent, AgentGarbled) as error:
            await self._orders.withdraw(candidate.agent_id, order)
            refusals.append(str(error))
            return None
        except asyncio.CancelledError:
            await self._orders.withdraw(candidate.agent_id, order)
            raise
        except OrderNotSent as unsent:
            # No agent can be asked: not a lack of room.
            raise Unavailable(f"{unsent}; try again") from unsent
        if not reply.HasField("error"):
            return reply
        if reply.error.code == "INVALID_DEVICE":
            raise InvalidArgument("device", reply.error.message.removeprefix("device: "))
        if reply.error.code in TRY_NEXT_AGENT:
            refusals.append(refusal_note(candidate.agent_id, reply.error.message))
            return None
        raise command_error(reply.error)

    async def _count(self, record: SessionRecord) -> None:
        """Counts a command that ran; a database too busy to count it does not undo it.

        The agent counts too, and its count comes with the session's close.
        """
        try:
            await self._store.count_command(record)
        except Exception as error:
            unreachable = outage(error)
            if unreachable is None:
                raise
            log.warning("session %s: a command ran but was not counted: %s", record.id, unreachable)

    def _require_active(self, record: SessionRecord | None) -> None:
        if record is None:
            raise NotFound("session", "")
        if not record.active:
            raise FailedPrecondition(
                f"session {record.id} is closed ({record.close_reason or 'closed'})"
            )

    def _answer(self, record: SessionRecord) -> sessions_pb2.Session:
        return record.to_proto(session_links(self._settings.public_url, record.id))
