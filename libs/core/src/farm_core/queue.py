"""The NATS contract between the scheduler and the agents: streams, subjects, consumers.

Every subject, subject pattern, consumer name and priority token either side uses
is spelled here, and only here.

Work: stream FARM_TASKS (work-queue retention) on `tasks.<region>.<priority>`,
published once per task with `Nats-Msg-Id` = task id; the agents of a region pull
each (region, priority) with the durable consumer `agents-<region>-<priority>`.
Events: stream FARM_EVENTS on `events.tasks.<task_id>.<agent_id>` (the reporting
agent's id, which its NATS user binds: `event_agent`), which the scheduler applies
to its database and watchers follow live. Cancels: `control.cancel.<task_id>` to
running agents, and the key-value bucket `farm_cancelled` (by task id, the reason
its task ended: `farm_core.task_ends`) for agents that have not started the task
and for storage. Route claims: the key-value bucket `farm_routes`, where an agent
and the scheduler race to take a task routed to a preferred region (see
`farm_core.route_claims`). Dead letters: stream FARM_DEAD on `dead.tasks.<task_id>`.
Agents: heartbeats in the key-value bucket `farm_agents`, drain orders on
`control.drain.<agent_id>`. Audit: stream FARM_AUDIT on `audit.<source>`,
AuditRecords the auth service writes to its database.

Beside the contract, what every NATS client of the farm does the same way: connect
and settle (ack, nak, term) a message (a pull loop's fetches are `farm_core.pulls`'). The buckets
named here are opened (or made) by `farm_core.shared_buckets`.
"""

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import nats
import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import (
    DEFAULT_PREFIX,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError
from prometheus_client import Gauge

from farm.tasks.v1 import tasks_pb2
from farm_core.nats_access import NatsAccess
from farm_core.nats_loss import OwnedClient, connection_closed

log = logging.getLogger(__name__)

TASK_STREAM = "FARM_TASKS"
EVENT_STREAM = "FARM_EVENTS"
DEAD_STREAM = "FARM_DEAD"
AUDIT_STREAM = "FARM_AUDIT"
CANCEL_BUCKET = "farm_cancelled"
AGENTS_BUCKET = "farm_agents"
ROUTES_BUCKET = "farm_routes"
ANY_REGION = "any"


class Priority(StrEnum):
    """A task priority as its token appears in task subjects and consumer names."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


PRIORITY_TOKENS: Mapping[int, Priority] = {
    tasks_pb2.PRIORITY_HIGH: Priority.HIGH,
    tasks_pb2.PRIORITY_NORMAL: Priority.NORMAL,
    tasks_pb2.PRIORITY_LOW: Priority.LOW,
}
"""The token of each farm.tasks.v1.Priority (UNSPECIFIED has none: validation makes it NORMAL)."""

ALL_TASK_SUBJECTS = "tasks.>"
ALL_EVENT_SUBJECTS = "events.>"
TASK_EVENT_SUBJECTS = "events.tasks.>"
"""Every task's events: what the scheduler applies."""
CANCEL_SUBJECTS = "control.cancel.>"
"""Every task's cancel notice: what a running agent listens to."""
ALL_DEAD_SUBJECTS = "dead.>"
ALL_AUDIT_SUBJECTS = "audit.>"
_CANCEL_PREFIX = "control.cancel."


@dataclass(frozen=True)
class QueueLimits:
    """Retention of the streams; the defaults suit one machine."""

    task_max_age_seconds: float = 7 * 24 * 3600
    event_max_age_seconds: float = 24 * 3600
    duplicate_window_seconds: float = 120
    # As long as a task's message may be redelivered: a mark outlives its message.
    cancel_ttl_seconds: float = 7 * 24 * 3600
    dead_max_age_seconds: float = 30 * 24 * 3600
    # An agent that has not sent a heartbeat for this long is taken for gone.
    agent_ttl_seconds: float = 30
    # Audit records wait here until the auth service has written them to SQL.
    audit_max_age_seconds: float = 7 * 24 * 3600


def task_subject(region: str, priority: Priority) -> str:
    """The subject a task of `region` ("" for any) and `priority` is published on."""
    return f"tasks.{region or ANY_REGION}.{priority.value}"


def region_task_subjects(region: str) -> str:
    """The subjects of every priority of `region`: the doorbell an idle agent listens to."""
    return f"tasks.{region}.*"


def consumer_name(region: str, priority: Priority) -> str:
    """The durable consumer of `task_subject(region, priority)` the region's agents share."""
    return f"agents-{region}-{priority.value}"


def next_task_subject(region: str, priority: Priority) -> str:
    """The JetStream API subject that hands out the next task of that consumer."""
    return f"{DEFAULT_PREFIX}.CONSUMER.MSG.NEXT.{TASK_STREAM}.{consumer_name(region, priority)}"


def event_subject(task_id: str, agent_id: str) -> str:
    """The subject agent `agent_id` reports a task's events on (its NATS user may no other)."""
    return f"events.tasks.{task_id}.{agent_id}"


def event_agent(subject: str) -> str | None:
    """The agent id an event subject (`events.<kind>.<id>.<agent_id>`) names.

    None for the subject agents used before their NATS user bound it
    (`events.<kind>.<id>`): the payload's agent id is then only the agent's word.
    """
    tokens = subject.split(".", 3)
    return tokens[3] if len(tokens) == 4 else None


def cancel_subject(task_id: str) -> str:
    """The subject that tells a running agent to stop a task."""
    return f"{_CANCEL_PREFIX}{task_id}"


def cancelled_task_id(subject: str) -> str:
    """The task id a `cancel_subject` names ("" for another subject)."""
    return subject.removeprefix(_CANCEL_PREFIX) if subject.startswith(_CANCEL_PREFIX) else ""


def drain_subject(agent_id: str) -> str:
    """The subject that tells one agent to drain."""
    return f"control.drain.{agent_id}"


def dead_subject(task_id: str) -> str:
    """The subject a task that ran out of attempts is copied to."""
    return f"dead.tasks.{task_id}"


def audit_subject(source: str) -> str:
    """The subject the part `source` ("scheduler", "edge", ...) publishes audit records on."""
    return f"audit.{source}"


# A link that loses packets without closing (a partition, a cut cable, a frozen VM)
# is noticed only by PINGs that go unanswered: once MAX_OUTSTANDING_PINGS are, the
# next tick drops the connection and reconnects, so within 3 times PING_INTERVAL_SECONDS
# (9 s). nats-py's defaults (120 s, 2) took 4 to 6 minutes, during which every
# in-progress ack an agent wrote counted as reached and the lapse rule
# (farm_agent.work.delivery) could not see that its delivery had lapsed. 9 s is under
# the agent's default in-progress interval (10 s), the margin that rule leaves.
PING_INTERVAL_SECONDS = 3.0
MAX_OUTSTANDING_PINGS = 2

nats_connected = Gauge(
    "farm_nats_connected",
    "Whether the process's NATS connection of this name is up (1), or lost: reconnecting, "
    "or closed by the server (0).",
    ["connection"],
)


def is_login_refusal(error: Exception) -> bool:
    """Whether NATS refused the connection's user and password ('Authorization Violation')."""
    return isinstance(error, nats.errors.AuthorizationError) or (
        "authorization violation" in str(error).lower()
    )


async def connect(
    access: NatsAccess,
    name: str,
    reconnected: Callable[[], None] | None = None,
    login_refused: Callable[[Exception], None] | None = None,
) -> Client:
    """Connects to NATS as `access` says, reconnecting for ever when the server goes away.

    `reconnected` is called each time the connection is back after an outage, and
    `login_refused` each time the server refuses the login; a connection the server
    closed for good is reported to `farm_core.nats_loss`.
    """
    client: OwnedClient | None = None
    connected = nats_connected.labels(name)

    async def on_disconnected() -> None:
        # The callback also fires when the service closes the connection itself.
        if client is not None and not client.is_closed:
            log.warning("NATS disconnected; reconnecting")
            connected.set(0)

    async def on_reconnected() -> None:
        log.info("NATS reconnected")
        connected.set(1)
        if reconnected is not None:
            reconnected()

    async def on_error(error: Exception) -> None:
        if not is_login_refusal(error):
            log.warning("NATS error: %s", error)
            return
        # Auth and storage keep serving and trying: say what to fix on each try.
        who = f"NATS_USER={access.user!r}" if access.user else "no NATS_USER (anonymous)"
        log.warning(
            "NATS at %s refused the login of %s: %s; check NATS_USER and NATS_PASSWORD",
            access.shown(),
            who,
            error,
        )
        if login_refused is not None:
            login_refused(error)

    async def on_closed() -> None:
        if client is not None and not client.closed_by_process:
            connected.set(0)
            connection_closed(name, client.last_error)

    client = OwnedClient()
    try:
        await client.connect(
            **access.connect_options(),
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,  # type: ignore[arg-type]  # seconds; nats-py says int
            connect_timeout=5,
            ping_interval=PING_INTERVAL_SECONDS,  # type: ignore[arg-type]  # seconds; says int
            max_outstanding_pings=MAX_OUTSTANDING_PINGS,
            disconnected_cb=on_disconnected,
            reconnected_cb=on_reconnected,
            error_cb=on_error,
            closed_cb=on_closed,
        )
    except BaseException:
        # A connect given up (cancelled at a start's deadline) may hold a socket that
        # nobody else can close: the caller never gets the client.
        await client.close()
        raise
    connected.set(1)
    return client


async def settle(reply: Awaitable[None], what: str) -> None:
    """Sends an ack, nak or term of a message about `what`; if it is lost, JetStream redelivers."""
    try:
        await reply
    except nats.errors.Error as error:
        log.warning("answering JetStream about %s failed: %s", what, error)


async def _ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.stream_info(str(config.name))
    except NotFoundError:
        try:
            await js.add_stream(config)
            return
        except BadRequestError:
            # Another process created it between our look and our add.
            pass
    await js.update_stream(config)


def _file_stream(
    name: str,
    subject: str,
    max_age_seconds: float,
    limits: QueueLimits,
    replicas: int,
    retention: RetentionPolicy = RetentionPolicy.LIMITS,
) -> StreamConfig:
    """A stream on disk, so it outlives a nats-server restart, with the farm's duplicate window."""
    return StreamConfig(
        name=name,
        subjects=[subject],
        retention=retention,
        storage=StorageType.FILE,
        max_age=max_age_seconds,
        duplicate_window=limits.duplicate_window_seconds,
        num_replicas=replicas,
    )


async def ensure_audit_stream(
    js: JetStreamContext, limits: QueueLimits | None = None, replicas: int = 1
) -> None:
    """Creates or updates the audit stream; on disk, so records outlive an auth restart."""
    limits = limits or QueueLimits()
    await _ensure_stream(
        js,
        _file_stream(
            AUDIT_STREAM, ALL_AUDIT_SUBJECTS, limits.audit_max_age_seconds, limits, replicas
        ),
    )


class StreamNotMade(Exception):
    """A stream the scheduler makes is not there yet: an agent's start waits for it."""


async def ensure_streams(
    js: JetStreamContext, limits: QueueLimits | None = None, replicas: int = 1
) -> None:
    """Creates or updates the task, event, dead-letter and audit streams; safe from any process.

    One try: a service's start tries it again while JetStream does not answer
    (`farm_core.nats_start`).
    """
    limits = limits or QueueLimits()
    await ensure_audit_stream(js, limits, replicas)
    for config in _work_streams(limits, replicas):
        await _ensure_stream(js, config)


async def find_work_streams(js: JetStreamContext) -> None:
    """Looks up the task and event streams; raises StreamNotMade while one is missing.

    The scheduler makes them, with the farm's limits and replicas: an agent (which
    may start before it, and may not make streams under NATS users) waits for them
    and never makes one itself.
    """
    for name in (TASK_STREAM, EVENT_STREAM):
        try:
            await js.stream_info(name)
        except NotFoundError as error:
            raise StreamNotMade(f"the stream {name} is not there yet") from error


def _work_streams(limits: QueueLimits, replicas: int) -> tuple[StreamConfig, ...]:
    return (
        _file_stream(
            TASK_STREAM,
            ALL_TASK_SUBJECTS,
            limits.task_max_age_seconds,
            limits,
            replicas,
            RetentionPolicy.WORK_QUEUE,
        ),
        _file_stream(DEAD_STREAM, ALL_DEAD_SUBJECTS, limits.dead_max_age_seconds, limits, replicas),
        _file_stream(
            EVENT_STREAM, ALL_EVENT_SUBJECTS, limits.event_max_age_seconds, limits, replicas
        ),
    )
