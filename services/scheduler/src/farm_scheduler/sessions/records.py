"""A session as the scheduler knows it, and its conversions to rows and to the API's Session."""

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.timestamps import to_timestamp

ACTIVE = sessions_pb2.SessionState.Name(sessions_pb2.SESSION_STATE_ACTIVE)
CLOSED = sessions_pb2.SessionState.Name(sessions_pb2.SESSION_STATE_CLOSED)


@dataclass(frozen=True)
class SessionLinks:
    """Where a session's CDP socket and live view are, as the public edge serves them."""

    cdp_url: str
    live_url: str
    # The DevTools HTTP endpoint (http, https) whose json/version names cdp_url.
    discovery_url: str = ""


@dataclass(frozen=True)
class SessionRecord:
    """One row of the sessions table."""

    id: str
    tenant: str
    state: str
    spec: sessions_pb2.SessionSpec
    agent_id: str
    create_time: dt.datetime
    expire_time: dt.datetime
    close_time: dt.datetime | None = None
    close_reason: str = ""
    commands: int = 0
    recording: tasks_pb2.ArtifactRef = field(default_factory=tasks_pb2.ArtifactRef)
    trace_id: str = ""

    @property
    def active(self) -> bool:
        """Whether its browser is (as far as the scheduler knows) still there."""
        return self.state == ACTIVE

    def to_proto(self, links: SessionLinks) -> sessions_pb2.Session:
        """The API's Session."""
        session = sessions_pb2.Session(
            id=self.id,
            state=sessions_pb2.SessionState.Value(self.state),
            agent_id=self.agent_id,
            create_time=to_timestamp(self.create_time),
            expire_time=to_timestamp(self.expire_time),
            close_reason=self.close_reason,
            spec=self.spec,
            tenant=self.tenant,
            commands=self.commands,
            trace_id=self.trace_id,
        )
        if self.active:
            session.cdp_url = links.cdp_url
            session.live_url = links.live_url
        if self.close_time is not None:
            session.close_time.CopyFrom(to_timestamp(self.close_time))
        if self.recording.id:
            session.recording.CopyFrom(self.recording)
        return session


def row_values(record: SessionRecord) -> dict[str, Any]:
    """The columns of `record`'s row."""
    return {
        "id": record.id,
        "tenant": record.tenant,
        "state": record.state,
        "spec": record.spec.SerializeToString(),
        "labels": dict(record.spec.labels),
        "agent_id": record.agent_id,
        "create_time": record.create_time,
        "expire_time": record.expire_time,
        "close_time": record.close_time,
        "close_reason": record.close_reason,
        "commands": record.commands,
        "recording": record.recording.SerializeToString() if record.recording.id else b"",
        "trace_id": record.trace_id,
    }


def record_from_row(row: Any) -> SessionRecord:
    """The record of a sessions row."""
    recording = tasks_pb2.ArtifactRef()
    if row.recording:
        recording.ParseFromString(row.recording)
    return SessionRecord(
        id=row.id,
        tenant=row.tenant,
        state=row.state,
        spec=sessions_pb2.SessionSpec.FromString(row.spec),
        agent_id=row.agent_id,
        create_time=row.create_time,
        expire_time=row.expire_time,
        close_time=row.close_time,
        close_reason=row.close_reason,
        commands=row.commands,
        recording=recording,
        trace_id=row.trace_id,
    )
