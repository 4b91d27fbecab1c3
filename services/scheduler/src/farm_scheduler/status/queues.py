"""How deep each task queue is and how long its oldest task has waited, from JetStream.

A queue is one (region, priority) of the FARM_TASKS stream. Its durable consumer
(`agents-<region>-<priority>`, made by the first agent of the region) knows what it
has not handed out yet (pending) and what it handed out without an ack (in flight);
a subject that holds tasks but has no consumer yet (no agent ever served the region)
is all pending. The oldest pending task is the first message after the consumer's
last delivered one.
"""

import datetime as dt
import logging
from dataclasses import dataclass

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo
from nats.js.errors import NotFoundError

from farm_core.queue import ALL_TASK_SUBJECTS, TASK_STREAM, Priority

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueDepth:
    """One queue now: tasks not yet handed out, handed out and unacked, the oldest one's wait."""

    region: str
    priority: Priority
    pending: int
    in_flight: int
    oldest_pending_age_seconds: float


def queue_of(subject: str) -> tuple[str, Priority] | None:
    """(region, priority) of a task subject `tasks.<region>.<priority>`; None for another."""
    parts = subject.split(".")
    if len(parts) != 3 or parts[0] != "tasks":
        return None
    try:
        return parts[1], Priority(parts[2])
    except ValueError:
        return None


async def read_queues(js: JetStreamContext, now: dt.datetime) -> list[QueueDepth]:
    """Every queue with a consumer or with tasks, by region then priority."""
    try:
        stream = await js.stream_info(TASK_STREAM, subjects_filter=ALL_TASK_SUBJECTS)
    except NotFoundError:
        return []
    held = stream.state.subjects or {}
    depths: dict[tuple[str, Priority], QueueDepth] = {}
    for consumer in await js.consumers_info(TASK_STREAM):
        subject = consumer.config.filter_subject or ""
        queue = queue_of(subject)
        if queue is not None:
            depths[queue] = await _consumer_depth(js, queue, subject, consumer, now)
    for subject, count in held.items():
        queue = queue_of(subject)
        if queue is not None and queue not in depths:
            oldest = await _first_time(js, subject, 1) if count else None
            depths[queue] = QueueDepth(*queue, count, 0, _age(oldest, now))
    return [depths[queue] for queue in sorted(depths, key=_queue_order)]


async def _consumer_depth(
    js: JetStreamContext,
    queue: tuple[str, Priority],
    subject: str,
    consumer: ConsumerInfo,
    now: dt.datetime,
) -> QueueDepth:
    pending = consumer.num_pending or 0
    oldest = None
    if pending:
        delivered = consumer.delivered.stream_seq if consumer.delivered else 0
        oldest = await _first_time(js, subject, delivered + 1)
    return QueueDepth(*queue, pending, consumer.num_ack_pending or 0, _age(oldest, now))


async def _first_time(js: JetStreamContext, subject: str, from_sequence: int) -> dt.datetime | None:
    """When the first message on `subject` at or after `from_sequence` was stored; None: none."""
    try:
        message = await js.get_msg(TASK_STREAM, seq=from_sequence, subject=subject, next=True)
    except (NotFoundError, nats.errors.Error) as error:
        log.debug("no message on %s from %d: %s", subject, from_sequence, error)
        return None
    return message.time


def _age(stored: dt.datetime | None, now: dt.datetime) -> float:
    return max(0.0, (now - stored).total_seconds()) if stored is not None else 0.0


_PRIORITY_ORDER = {priority: index for index, priority in enumerate(Priority)}


def _queue_order(queue: tuple[str, Priority]) -> tuple[str, int]:
    return queue[0], _PRIORITY_ORDER[queue[1]]
