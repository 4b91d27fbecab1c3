"""The messages that hand a task to the agents, and a failed task's dead letter.

A task's WorkItem carries its spec and its upload grant; tasks of one spec in a
batch share the serialized spec. Each message knows its subject, its Nats-Msg-Id
and the span its publish continues.
"""

from contextlib import AbstractContextManager
from dataclasses import dataclass

from opentelemetry.trace import Span

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core import trace_context
from farm_core.queue import PRIORITY_TOKENS, task_subject
from farm_core.timestamps import to_timestamp
from farm_core.trace_context import producing
from farm_scheduler.records import TaskRecord


def work_item(record: TaskRecord, grant: str = "") -> queue_pb2.WorkItem:
    """The message that hands `record` to an agent, with its upload `grant`.

    A dead letter's copy carries none: it is shown to admins, never delivered.
    """
    return queue_pb2.WorkItem(
        task_id=record.id,
        tenant=record.tenant,
        spec=record.spec,
        create_time=to_timestamp(record.create_time),
        tenant_max_running=record.tenant_max_running,
        # While it may still fall back, the agents must claim it first (route_claims).
        claim_key=record.publish_id if record.route_pending else "",
        upload_grant=grant,
    )


def _traced(record: TaskRecord) -> dict[str, str | int]:
    """What a publish span of `record` says about it."""
    return {"farm.task_id": record.id, "farm.requeues": record.state.requeues}


def dead_letter(record: TaskRecord) -> queue_pb2.DeadLetter:
    """The copy of a FAILED task that goes to the dead-letter stream."""
    state = record.state
    letter = queue_pb2.DeadLetter(
        item=work_item(record),
        error=tasks_pb2.TaskError(
            code=state.error_code, message=state.error_message, retryable=state.error_retryable
        ),
        attempts=state.attempts,
    )
    if state.dead_time is not None:
        letter.dead_time.CopyFrom(to_timestamp(state.dead_time))
    return letter


@dataclass(frozen=True)
class TaskMessage:
    """A message about a task for JetStream: what it is (for the logs), where, and its id."""

    what: str
    task_id: str
    subject: str
    payload: bytes
    message_id: str
    """Its Nats-Msg-Id, by which JetStream drops a second publish of it."""
    span: str
    """The name of its publish's span."""
    record: TaskRecord
    """The task, whose stored trace context (traceparent) the publish continues."""

    def producing(self) -> AbstractContextManager[dict[str, str]]:
        """The span of its publish (trace_context.producing), yielding its trace headers."""
        record = self.record
        return producing(
            self.span, self.subject, parent=record.trace_parent, attributes=_traced(record)
        )

    def start_producing(self) -> tuple[Span | None, dict[str, str]]:
        """The started span of its pipelined publish and its trace headers."""
        record = self.record
        return trace_context.start_producing(
            self.span, self.subject, parent=record.trace_parent, attributes=_traced(record)
        )


def shared_part(record: TaskRecord) -> bytes:
    """The serialized fields of `record`'s WorkItem that a batch's tasks of one spec share."""
    return queue_pb2.WorkItem(
        tenant=record.tenant,
        spec=record.spec,
        create_time=to_timestamp(record.create_time),
        tenant_max_running=record.tenant_max_running,
    ).SerializeToString(deterministic=True)


def task_payload(record: TaskRecord, grant: str, shared: bytes) -> bytes:
    """`record`'s WorkItem with its `grant`, serialized; `shared` is its shared_part.

    Serialized protobuf messages concatenated parse as their merge, so the spec
    (most of the bytes) is serialized once for the tasks that share it.
    """
    own = queue_pb2.WorkItem(
        task_id=record.id,
        # While it may still fall back, the agents must claim it first (route_claims).
        claim_key=record.publish_id if record.route_pending else "",
        upload_grant=grant,
    )
    return shared + own.SerializeToString(deterministic=True)


def task_message(record: TaskRecord, grant: str, shared: bytes) -> TaskMessage:
    """The WorkItem of `record`, with its grant, as a message for its subject."""
    return TaskMessage(
        "task",
        record.id,
        task_subject(record.queue_region, PRIORITY_TOKENS[record.spec.priority]),
        task_payload(record, grant, shared),
        record.publish_id,
        "task.publish",
        record,
    )
