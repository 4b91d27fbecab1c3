"""The scheduler's tables: one row per task (the source of truth for its state) and its attempts."""

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from farm_core.db import UtcDateTime
from farm_core.sweep_turns import sweep_leases_table

HAS_IDEMPOTENCY_KEY = text("idempotency_key <> ''")
"""Only tasks that carry an idempotency key are unique by it (a partial index).

Lookups by key repeat this condition word for word, so that SQLite uses the index.
A task whose key is older than the idempotency window gives it up (its column is
emptied; its spec keeps the key), so that a new task can take it.
"""
# A new task has no deadline (mostly), finish time or dead time: the indexes on them hold
# only the rows that have one (an INSERT writes no entry), and the queries they serve
# compare the column or ask for it to be set, which implies it (migration 0011).
_HAS_DEADLINE = text("deadline IS NOT NULL")
_HAS_FINISH_TIME = text("finish_time IS NOT NULL")
_HAS_DEAD_TIME = text("dead_time IS NOT NULL")
HAS_CACHE_KEY = text("cache_key <> ''")
"""Only tasks whose result may serve the cache are in its index (a partial index).

The cache lookup repeats this condition word for word, so that SQLite uses the index.
"""
HAS_CACHE_SOURCE = text("cache_source <> ''")
"""Only tasks answered from the cache name a source (a partial index, migration 0016)."""
UNSOURCED_CACHED_SQLITE = text("cached = 1 AND cache_source = ''")
UNSOURCED_CACHED_POSTGRESQL = text("cached = true AND cache_source = ''")
"""Tasks answered from the cache before migration 0016, which name no source."""
_HAS_CLOSE_TIME = text("close_time IS NOT NULL")
# The republisher's queries, `published = false` and `dead_letter_pending = true`,
# as each dialect writes them.
_UNPUBLISHED_SQLITE = text("published = 0")
_UNPUBLISHED_POSTGRESQL = text("published = false")
DEAD_LETTER_PENDING_SQLITE = text("dead_letter_pending = 1")
DEAD_LETTER_PENDING_POSTGRESQL = text("dead_letter_pending = true")
# The callback sender's query, `callback_pending = true`, as each dialect writes it.
CALLBACK_PENDING_SQLITE = text("callback_pending = 1")
CALLBACK_PENDING_POSTGRESQL = text("callback_pending = true")
ROUTE_PENDING_SQLITE = text("route_pending = 1")
ROUTE_PENDING_POSTGRESQL = text("route_pending = true")


class Base(DeclarativeBase):
    """The scheduler's SQLAlchemy metadata."""


class TaskRow(Base):
    """A task: what was asked (the serialized spec), its state and its outcome."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_tenant_create_time_id", "tenant", "create_time", "id"),
        Index("ix_tasks_tenant_status", "tenant", "status"),
        Index(
            "uq_tasks_tenant_idempotency_key",
            "tenant",
            "idempotency_key",
            unique=True,
            sqlite_where=HAS_IDEMPOTENCY_KEY,
            postgresql_where=HAS_IDEMPOTENCY_KEY,
        ),
        Index(
            "ix_tasks_unpublished",
            "create_time",
            sqlite_where=_UNPUBLISHED_SQLITE,
            postgresql_where=_UNPUBLISHED_POSTGRESQL,
        ),
        Index(
            "ix_tasks_status_deadline",
            "status",
            "deadline",
            sqlite_where=_HAS_DEADLINE,
            postgresql_where=_HAS_DEADLINE,
        ),
        # The fleet status counts the tasks that ended lately, by state.
        Index(
            "ix_tasks_status_finish_time",
            "status",
            "finish_time",
            sqlite_where=_HAS_FINISH_TIME,
            postgresql_where=_HAS_FINISH_TIME,
        ),
        Index(
            "ix_tasks_tenant_dead_time_id",
            "tenant",
            "dead_time",
            "id",
            sqlite_where=_HAS_DEAD_TIME,
            postgresql_where=_HAS_DEAD_TIME,
        ),
        # The result cache: a tenant's latest task of a spec that ended, in one seek.
        Index(
            "ix_tasks_cache",
            "tenant",
            "cache_key",
            "finish_time",
            sqlite_where=HAS_CACHE_KEY,
            postgresql_where=HAS_CACHE_KEY,
        ),
        # The retention sweep: whether a kept task shares a task's result.
        Index(
            "ix_tasks_cache_source",
            "cache_source",
            sqlite_where=HAS_CACHE_SOURCE,
            postgresql_where=HAS_CACHE_SOURCE,
        ),
        Index(
            "ix_tasks_unsourced_cached",
            "tenant",
            "finish_time",
            sqlite_where=UNSOURCED_CACHED_SQLITE,
            postgresql_where=UNSOURCED_CACHED_POSTGRESQL,
        ),
        Index(
            "ix_tasks_dead_letter_pending",
            "dead_time",
            sqlite_where=DEAD_LETTER_PENDING_SQLITE,
            postgresql_where=DEAD_LETTER_PENDING_POSTGRESQL,
        ),
        Index(
            "ix_tasks_callback_pending",
            "callback_due",
            sqlite_where=CALLBACK_PENDING_SQLITE,
            postgresql_where=CALLBACK_PENDING_POSTGRESQL,
        ),
        Index(
            "ix_tasks_route_pending",
            "create_time",
            sqlite_where=ROUTE_PENDING_SQLITE,
            postgresql_where=ROUTE_PENDING_POSTGRESQL,
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    # The farm.tasks.v1.TaskStatus value's name, e.g. "TASK_STATUS_QUEUED".
    status: Mapped[str] = mapped_column(String(32))
    # The serialized farm.tasks.v1.TaskSpec, with defaults filled in.
    spec: Mapped[bytes] = mapped_column(LargeBinary)
    # The farm.tasks.v1.Priority value's name, e.g. "PRIORITY_NORMAL".
    priority: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(32))
    labels: Mapped[dict[str, Any]] = mapped_column(JSON)
    idempotency_key: Mapped[str] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(Integer)
    agent_id: Mapped[str] = mapped_column(String(255))
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    start_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    finish_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # The serialized farm.tasks.v1.TaskResult; empty until the task succeeds.
    result: Mapped[bytes] = mapped_column(LargeBinary)
    error_code: Mapped[str] = mapped_column(String(64))
    error_message: Mapped[str] = mapped_column(Text)
    error_retryable: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # Whether JetStream has stored the task's WorkItem (of its latest queuing).
    published: Mapped[bool] = mapped_column(Boolean)
    # The FARM_TASKS sequence of that WorkItem (NULL: not known), deleted from the
    # stream when the task ends or moves while queued (queue_messages).
    queue_sequence: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The spec's deadline, as a column so that the sweeper finds expired tasks.
    deadline: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # With status QUEUED after a failed attempt: when the agents get the task again.
    retry_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # With status FAILED: when the task was given up (it is a dead letter).
    dead_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Whether its DeadLetter still has to be published to FARM_DEAD.
    dead_letter_pending: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # Attempts made before the latest requeue; agents count theirs from 1 again.
    attempt_base: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # How often RequeueDeadLetter queued the task again (names its WorkItem's Nats-Msg-Id).
    requeues: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    requeue_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # The last FARM_EVENTS sequence before the latest requeue: events up to it (and
    # dated before the requeue) belong to the earlier attempts.
    requeue_event_sequence: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    # Bumped by every change of state: the compare-and-set of a transition.
    revision: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # The creating tenant's maxRunningTasks (0 unlimited), handed to the agents in every
    # WorkItem of the task, republished ones too; NULL for tasks older than the column.
    tenant_max_running: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The creating tenant's maxArtifactBytes (0 unlimited), carried to storage in the
    # grant of every WorkItem of the task; NULL for tasks older than the column.
    tenant_max_artifact_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The W3C traceparent of the call that created the task ("" untraced): the parent of
    # every publish of its WorkItem, so that all its attempts are in one trace.
    trace_parent: Mapped[str] = mapped_column(String(64), server_default="")
    # The result cache's key of the spec (result_cache.cache_key): hex SHA-256, or "" for
    # a task whose result never serves the cache (and for a task answered from it).
    cache_key: Mapped[str] = mapped_column(String(64), server_default="")
    # Whether the task was answered from the result cache instead of run.
    cached: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # With `cached`: the id of the task whose result (and artifacts) it shares; "" for
    # any other task, and for cached tasks older than the column (migration 0016).
    cache_source: Mapped[str] = mapped_column(String(32), server_default="")
    # Whether the task's callback is still to be delivered (set at creation when the spec
    # has a callback URL, again by a requeue); the sender takes it once the task is final.
    callback_pending: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # When the next delivery may start (NULL: at once); a sender pushes it ahead while it
    # delivers, so that another scheduler does not deliver the same callback meanwhile.
    callback_due: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # The region whose queue holds the task when a region rule routed it: the preferred
    # region, or "any" once it fell back; "" when no rule did (its spec's region).
    routed_region: Mapped[str] = mapped_column(String(32), server_default="")
    # Whether the routed task may still fall back to any region: set while it waits in
    # its preferred region, cleared once an agent there claimed it or it was moved.
    route_pending: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # What the running attempt waits for ("waiting for storage: …"); shown while RUNNING.
    status_message: Mapped[str] = mapped_column(Text, server_default="")


class CallbackAttemptRow(Base):
    """One delivery attempt of a task's callback: when, the receiver's status, the error."""

    __tablename__ = "task_callback_attempts"

    task_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    # From 1, continuing across requeues.
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # 0 when there was no answer.
    http_status: Mapped[int] = mapped_column(Integer)
    # Empty when it was delivered.
    error: Mapped[str] = mapped_column(Text)


class WebhookSecretRow(Base):
    """A tenant's secret that signs its callbacks, and the previous one after a rotation."""

    __tablename__ = "webhook_secrets"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    secret: Mapped[str] = mapped_column(String(128))
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # Empty when there is none.
    previous_secret: Mapped[str] = mapped_column(String(128), server_default="")
    previous_valid_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)


class AttemptRow(Base):
    """One attempt of a task: the agent that ran it, when, and its error if it failed."""

    __tablename__ = "task_attempts"

    task_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    # From 1, continuing across requeues.
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(255))
    start_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    finish_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    error_code: Mapped[str] = mapped_column(String(64))
    error_message: Mapped[str] = mapped_column(Text)
    retryable: Mapped[bool] = mapped_column(Boolean)


class SessionRow(Base):
    """A session: where its browser runs, whether it is open, and how it ended."""

    __tablename__ = "sessions"
    __table_args__ = (
        Index("ix_sessions_tenant_create_time_id", "tenant", "create_time", "id"),
        Index("ix_sessions_state_agent", "state", "agent_id"),
        # The retention sweep's closed sessions.
        Index(
            "ix_sessions_close_time",
            "close_time",
            sqlite_where=_HAS_CLOSE_TIME,
            postgresql_where=_HAS_CLOSE_TIME,
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    # The farm.sessions.v1.SessionState value's name, e.g. "SESSION_STATE_ACTIVE".
    state: Mapped[str] = mapped_column(String(32))
    # The serialized farm.sessions.v1.SessionSpec, with defaults filled in.
    spec: Mapped[bytes] = mapped_column(LargeBinary)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Empty while the session is being placed.
    agent_id: Mapped[str] = mapped_column(String(255))
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expire_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    close_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    close_reason: Mapped[str] = mapped_column(String(32))
    commands: Mapped[int] = mapped_column(Integer)
    # The serialized farm.tasks.v1.ArtifactRef of the recording; empty without one.
    recording: Mapped[bytes] = mapped_column(LargeBinary)
    # The session's trace (CreateSession's W3C trace id); empty without one.
    trace_id: Mapped[str] = mapped_column(String(32), server_default="")


class QueueMessageDeleteRow(Base):
    """A WorkItem to delete from FARM_TASKS whose delete failed (NATS was down), to retry."""

    __tablename__ = "queue_message_deletes"

    task_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Its FARM_TASKS stream sequence.
    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # The Nats-Msg-Id it must carry; NULL: any of the task's (one that ended while queued).
    message_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # When its delete was last tried: the least lately tried is retried first.
    try_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class PendingEndMarkRow(Base):
    """An end mark, or its withdrawal, that NATS did not take (it was down), to retry."""

    __tablename__ = "pending_end_marks"

    task_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # The reason to mark (farm_core.task_ends); NULL: withdraw the mark (a requeue).
    reason: Mapped[str | None] = mapped_column(String(96), nullable=True)
    # When it was kept or last tried: the least lately tried is retried first, and a
    # retry drops the row only if no newer order for the task replaced it meanwhile.
    try_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


sweep_leases = sweep_leases_table(Base.metadata)
"""Whose turn it is to run the retention sweep (farm_core.sweep_turns)."""
