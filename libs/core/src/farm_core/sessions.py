"""The session contract shared by the scheduler, the agents and the edge.

Orders: core NATS requests on `sessions.<agent_id>.open|run|close|hold`, answered by
a SessionReply. Closes: SessionClosed on `events.sessions.<session_id>.<agent_id>`
(stream FARM_EVENTS; the agent's NATS user binds its id). Routes: the key-value
bucket `farm_sessions`, session id → SessionRoute, which only the scheduler writes
(for the agent it records as the session's, and removes as the session closes) and
the edge reads; agents may not touch it.
"""

import enum
import re

from google.protobuf.message import DecodeError
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from farm.queue.v1 import queue_pb2
from farm_core.kv import Versioned, open_bucket, read

SESSIONS_BUCKET = "farm_sessions"
SESSION_EVENTS = "events.sessions.>"
"""The subjects of every session's SessionClosed events."""
SESSION_ID_PATTERN = re.compile(r"ses_[0-9a-f]{16}")
"""Session ids: "ses_" and 16 hex digits (also safe as NATS tokens and KV keys)."""


class SessionOrder(enum.StrEnum):
    """What the scheduler asks of the agent that holds (or will hold) a session."""

    OPEN = "open"
    RUN = "run"
    CLOSE = "close"
    HOLD = "hold"
    """Whether the agent still holds the session (asked while a command waits)."""


class CloseReason(enum.StrEnum):
    """Why a session closed, as Session.closeReason shows it."""

    CLOSED_BY_USER = "CLOSED_BY_USER"
    IDLE_TIMEOUT = "IDLE_TIMEOUT"
    MAX_LIFETIME = "MAX_LIFETIME"
    AGENT_LOST = "AGENT_LOST"
    AGENT_DRAINING = "AGENT_DRAINING"
    BROWSER_CRASHED = "BROWSER_CRASHED"
    BROWSER_CLOSED = "BROWSER_CLOSED"
    OPEN_ABANDONED = "OPEN_ABANDONED"
    """No Session shows it: the close of a browser opened for a session that its agent
    does not hold in the scheduler's records (the scheduler gave up on that opening, or
    died before it recorded it). Nothing of such a browser is kept."""


class Refusal(enum.StrEnum):
    """SessionReply error codes for an order the agent did not carry out.

    A command that ran and failed answers with a task error code instead
    (farm_core.task_errors).
    """

    NO_CAPACITY = "NO_CAPACITY"
    AGENT_DRAINING = "AGENT_DRAINING"
    SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
    INVALID_ORDER = "INVALID_ORDER"
    INTERNAL = "INTERNAL"
    OPEN_TOO_LATE = "OPEN_TOO_LATE"
    """The browser opened past the order's answer_within_ms (or its opening was
    withdrawn): the agent closed it again."""


def order_subject(agent_id: str, order: SessionOrder) -> str:
    """The subject an order for the sessions of `agent_id` is sent on."""
    return f"sessions.{agent_id}.{order.value}"


def closed_subject(session_id: str, agent_id: str) -> str:
    """The subject agent `agent_id` publishes a session's SessionClosed event on."""
    return f"events.sessions.{session_id}.{agent_id}"


async def sessions_bucket(js: JetStreamContext, replicas: int = 1) -> KeyValue:
    """The `farm_sessions` bucket of SessionRoutes, created on first use (on disk)."""
    return await open_bucket(
        js, KeyValueConfig(bucket=SESSIONS_BUCKET, storage=StorageType.FILE, replicas=replicas)
    )


def decode_route(value: bytes) -> queue_pb2.SessionRoute:
    """A `farm_sessions` entry's SessionRoute; ValueError if it holds none."""
    try:
        return queue_pb2.SessionRoute.FromString(value)
    except DecodeError as error:
        raise ValueError(f"not a SessionRoute: {error}") from error


async def read_route(routes: KeyValue, session_id: str) -> Versioned[queue_pb2.SessionRoute]:
    """The session's route and its revision: (None, 0) for none, None for an unreadable one."""
    return await read(routes, session_id, decode_route)
