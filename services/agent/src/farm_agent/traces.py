"""The agent's spans around work that arrives over NATS: task deliveries and session orders.

A task's WorkItem carries the scheduler's `task.publish` context in its headers
(farm_core.trace_context); each delivery of it is a `task.attempt` under that
span, so a retried task shows its attempts side by side in one trace, and the
first delivery also shows `task.queued`, the time it waited in JetStream. A
session is one trace: `session.open` continues the CreateSession call, and each
later order (`session.command`, `session.close`) is a child of the open, linked to
the call that sent it; a close the agent makes itself (idle, lifetime, the browser
gone, a drain) is a `session.close` child of the open too. The spans inside (the
browser, the page, the uploads) are started where that work is done.
"""

import contextlib
import datetime as dt
from collections import OrderedDict
from collections.abc import Iterator

from nats.aio.msg import Msg
from opentelemetry import trace
from opentelemetry.trace import Span, SpanContext, SpanKind

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import CapturedArtifact
from farm_agent.egress.session import EgressSession
from farm_core.task_defaults import ACTIONS
from farm_core.trace_context import consuming, incoming_context
from farm_core.tracing import logged_trace, tracer

# Sessions whose trace is remembered at most; a session is forgotten as it closes, one
# that never does (discarded as it opened) once this many newer ones were opened.
MAX_SESSION_TRACES = 1024


def _nanoseconds(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


@contextlib.contextmanager
def attempt_span(message: Msg, task_id: str, received: dt.datetime) -> Iterator[Span]:
    """The span of one delivery of a task, under the publish its headers carry.

    The first delivery also gets `task.queued`, from the message's arrival in
    JetStream to `received`.
    """
    metadata = message.metadata
    if metadata.num_delivered == 1:
        queued = tracer().start_span(
            "task.queued",
            context=incoming_context(message.headers),
            attributes={"farm.task_id": task_id},
            start_time=_nanoseconds(metadata.timestamp),
        )
        queued.end(end_time=_nanoseconds(max(received, metadata.timestamp)))
    attributes: dict[str, str | int] = {
        "farm.task_id": task_id,
        "farm.delivery": metadata.num_delivered,
    }
    with consuming("task.attempt", message.subject, message.headers, attributes=attributes) as span:
        yield span


class SessionTraces:
    """Each open session's trace: the context of its `session.open` span."""

    def __init__(self, capacity: int = MAX_SESSION_TRACES) -> None:
        self._capacity = capacity
        self._opened: OrderedDict[str, SpanContext] = OrderedDict()

    @contextlib.contextmanager
    def opening(self, session_id: str, message: Msg) -> Iterator[Span]:
        """The span of an open order; it becomes the session's trace."""
        with consuming(
            "session.open",
            message.subject,
            message.headers,
            attributes={"farm.session_id": session_id},
        ) as span:
            self._opened[session_id] = span.get_span_context()
            self._opened.move_to_end(session_id)
            while len(self._opened) > self._capacity:
                self._opened.popitem(last=False)
            yield span

    @contextlib.contextmanager
    def ordered(
        self, name: str, session_id: str, message: Msg, egress: EgressSession | None = None
    ) -> Iterator[Span]:
        """The span of a later order (a command, a close) in the session's trace.

        The egress guard's decisions meanwhile are events of this span.
        """
        with consuming(
            name,
            message.subject,
            message.headers,
            parent=self._opened.get(session_id),
            attributes={"farm.session_id": session_id},
        ) as span:
            if egress is None:
                yield span
                return
            before, egress.span = egress.span, span
            try:
                yield span
            finally:
                egress.span = before

    @contextlib.contextmanager
    def closing(self, session_id: str) -> Iterator[Span]:
        """The span of a close the agent makes itself, with no order: a child of the open."""
        opened = self._opened.get(session_id)
        parent = trace.set_span_in_context(trace.NonRecordingSpan(opened)) if opened else None
        with (
            tracer().start_as_current_span(
                "session.close",
                context=parent,
                kind=SpanKind.INTERNAL,
                attributes={"farm.session_id": session_id},
            ) as span,
            logged_trace(),
        ):
            yield span

    def forget(self, session_id: str) -> None:
        """The session closed: its trace ends."""
        self._opened.pop(session_id, None)


def step_attributes(step: tasks_pb2.Step, index: int) -> dict[str, str | int]:
    """What a step's span says: its place and its kind (never its text: a fill may be secret)."""
    kinds = [descriptor.json_name for descriptor, _ in step.ListFields()]
    return {"farm.step.index": index, "farm.step.kind": kinds[0] if kinds else ""}


def artifact_attributes(artifact: CapturedArtifact) -> dict[str, str | int]:
    """What an upload's span says of the artifact."""
    return {"farm.artifact.name": artifact.name, "farm.artifact.bytes": len(artifact.data)}


def action_attributes(spec: tasks_pb2.TaskSpec) -> dict[str, str]:
    """What a capture's span says: the action (screenshot, pdf, ...)."""
    return {"farm.action": next((a for a in ACTIONS if spec.HasField(a)), "")}
