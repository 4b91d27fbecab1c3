"""Typed views of what the farm answers: tasks, their results and artifacts, sessions, tabs."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, timestamp_pb2

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2

# Beyond 2**53 a double no longer holds every whole number; Envoy writes those in exponent form.
EXACT_WHOLE_NUMBERS = 2**53


def whole_numbers(value: Any) -> Any:
    """`value` with each whole-valued float as an int: `3`, as the HTTP API's JSON has it.

    protobuf's Python JSON reads every number of a result's `json` (and every double)
    as a float, `3.0`. The farm's own copy is farm_core.message_json's; the SDK does
    not depend on farm_core (a test holds the two alike).
    """
    if isinstance(value, float) and value.is_integer() and abs(value) < EXACT_WHOLE_NUMBERS:
        return int(value)
    if isinstance(value, dict):
        return {key: whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [whole_numbers(item) for item in value]
    return value


class TaskStatus(enum.StrEnum):
    """Where a task is in its life; the last three are final."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def final(self) -> bool:
        """Whether the task has ended (it changes no more)."""
        return self in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED)


@dataclass(frozen=True)
class Artifact:
    """A file a task produced (screenshot, PDF, ...), stored by the farm under `id`."""

    id: str
    kind: str
    content_type: str
    size_bytes: int
    sha256: str

    @classmethod
    def from_proto(cls, ref: tasks_pb2.ArtifactRef) -> Artifact:
        """The artifact a task's result refers to."""
        kind = tasks_pb2.ArtifactKind.Name(ref.kind).removeprefix("ARTIFACT_KIND_")
        return cls(ref.id, kind, ref.content_type, ref.size_bytes, ref.sha256)


@dataclass(frozen=True)
class Result:
    """What a task (or a session command) produced on its page."""

    artifacts: tuple[Artifact, ...]
    text: str
    json: Any
    http_status: int
    final_url: str
    title: str
    proto: tasks_pb2.TaskResult = field(repr=False)

    @classmethod
    def from_proto(cls, result: tasks_pb2.TaskResult) -> Result:
        """The typed view of a TaskResult; `proto` keeps every field."""
        value = (
            whole_numbers(json_format.MessageToDict(result.json))
            if result.HasField("json")
            else None
        )
        return cls(
            artifacts=tuple(Artifact.from_proto(ref) for ref in result.artifacts),
            text=result.text,
            json=value,
            http_status=result.http_status,
            final_url=result.final_url,
            title=result.title,
            proto=result,
        )

    def artifact(self, kind: str) -> Artifact | None:
        """The first artifact of `kind` ("SCREENSHOT", "PDF", ...), None without one."""
        return next((artifact for artifact in self.artifacts if artifact.kind == kind), None)


@dataclass(frozen=True)
class TaskError:
    """Why a task failed: the farm's code (e.g. NAVIGATION_TIMEOUT) and a message."""

    code: str
    message: str
    retryable: bool


def _time(stamp: timestamp_pb2.Timestamp, present: bool) -> datetime | None:
    return stamp.ToDatetime(tzinfo=UTC) if present else None


@dataclass(frozen=True)
class Task:
    """A task as the farm last reported it; `proto` is the farm.tasks.v1.Task itself."""

    id: str
    status: TaskStatus
    attempts: int
    agent_id: str
    result: Result | None
    error: TaskError | None
    trace_id: str
    cached: bool
    create_time: datetime | None
    finish_time: datetime | None
    proto: tasks_pb2.Task = field(repr=False)

    @classmethod
    def from_proto(cls, task: tasks_pb2.Task) -> Task:
        """The typed view of a farm.tasks.v1.Task."""
        status = tasks_pb2.TaskStatus.Name(task.status).removeprefix("TASK_STATUS_")
        error = (
            TaskError(task.error.code, task.error.message, task.error.retryable)
            if task.HasField("error")
            else None
        )
        return cls(
            id=task.id,
            status=TaskStatus(status) if status in TaskStatus.__members__ else TaskStatus.QUEUED,
            attempts=task.attempts,
            agent_id=task.agent_id,
            result=Result.from_proto(task.result) if task.HasField("result") else None,
            error=error,
            trace_id=task.trace_id,
            cached=task.cached,
            create_time=_time(task.create_time, task.HasField("create_time")),
            finish_time=_time(task.finish_time, task.HasField("finish_time")),
            proto=task,
        )

    @property
    def done(self) -> bool:
        """Whether the task has ended."""
        return self.status.final

    def to_dict(self) -> dict[str, Any]:
        """The task as the farm's JSON (proto3 JSON names, as the HTTP API returns it)."""
        written: dict[str, Any] = whole_numbers(json_format.MessageToDict(self.proto))
        return written


@dataclass(frozen=True)
class SessionInfo:
    """An interactive session as the farm last reported it."""

    id: str
    active: bool
    agent_id: str
    cdp_url: str
    live_url: str
    close_reason: str
    proto: sessions_pb2.Session = field(repr=False)

    @classmethod
    def from_proto(cls, session: sessions_pb2.Session) -> SessionInfo:
        """The typed view of a farm.sessions.v1.Session."""
        return cls(
            id=session.id,
            active=session.state == sessions_pb2.SESSION_STATE_ACTIVE,
            agent_id=session.agent_id,
            cdp_url=session.cdp_url,
            live_url=session.live_url,
            close_reason=session.close_reason,
            proto=session,
        )


@dataclass(frozen=True)
class Tab:
    """One of a session's pages (tabs), as a command's `tabs` lists them."""

    index: int
    title: str
    url: str
    current: bool

    @classmethod
    def listed(cls, result: Result) -> list[Tab]:
        """The pages a `tabs` command's result lists, the oldest first."""
        return [
            cls(int(page["index"]), page["title"], page["url"], bool(page["current"]))
            for page in result.json or []
        ]


@dataclass(frozen=True)
class WebhookSecret:
    """The tenant's secret that signs its callbacks (HMAC-SHA256 key: its UTF-8 bytes)."""

    secret: str
    create_time: datetime | None
    previous_valid_until: datetime | None
    """Until when callbacks also carry a signature by the previous secret; None if none."""

    @classmethod
    def from_proto(cls, secret: tasks_pb2.WebhookSecret) -> WebhookSecret:
        """The typed view of a farm.tasks.v1.WebhookSecret."""
        return cls(
            secret=secret.secret,
            create_time=_time(secret.create_time, secret.HasField("create_time")),
            previous_valid_until=_time(
                secret.previous_valid_until, secret.HasField("previous_valid_until")
            ),
        )
