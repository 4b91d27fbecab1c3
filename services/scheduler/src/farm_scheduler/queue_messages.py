"""Deletes from FARM_TASKS the WorkItems no agent is to run.

A task cancelled, or failed at its deadline, while queued leaves its WorkItem in
the stream, and so does the region fallback the message it moved the task away
from. An agent that pulls such a message acks it unrun, but on a subject no agent
pulls (a region without agents) it would stay for the stream's max age, counted as
pending work by `farm status` and the queue-age gauge. So the scheduler deletes it
by the stream sequence noted when it was published (`queue_sequence`).

Never a message still to run: a task ended so can never be queued again (only a
FAILED task is requeued, and not past its deadline), and a moved task's old message
is one whose route claim is MOVED, which no agent runs. The message at the sequence
is deleted only if its Nats-Msg-Id is the one expected: a stream made again numbers
its messages from 1. Best effort: a delete that fails is logged and left (the agent
that pulls the message acks it unrun; else the stream's max age removes it), and
the task's end or move stands either way.
"""

import logging
from collections.abc import Callable

import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import APIError, NotFoundError

from farm.tasks.v1 import tasks_pb2
from farm_core.queue import TASK_STREAM
from farm_scheduler.records import TaskRecord

log = logging.getLogger(__name__)

NO_MESSAGE_FOUND = 10057
"""JetStream's err_code for a delete of a sequence the stream no longer holds."""


class QueueMessages:
    """Deletes the WorkItems of tasks that ended or moved while queued."""

    def __init__(self, nc: Client, js: JetStreamContext) -> None:
        self._nc = nc
        self._js = js

    async def ended(self, before: TaskRecord) -> bool:
        """Deletes the WorkItem of a task that ended; `before` is its record before the end.

        Only for a task that was QUEUED: a running one's message is its agent's to ack.
        True if a message was deleted.
        """
        if before.state.status != tasks_pb2.TASK_STATUS_QUEUED:
            return False
        task_id = before.id
        return await self._delete(before, lambda message_id: _of_task(message_id, task_id))

    async def moved(self, before: TaskRecord) -> bool:
        """Deletes the preferred region's WorkItem of a task the fallback moved.

        `before` is its record before the move. True if a message was deleted.
        """
        expected = before.publish_id
        return await self._delete(before, lambda message_id: message_id == expected)

    async def _delete(self, record: TaskRecord, is_its: Callable[[str], bool]) -> bool:
        sequence = record.queue_sequence
        if not record.published or sequence is None:
            return False  # Not in the stream yet, or published before the sequence was kept.
        if not self._nc.is_connected:
            log.info("NATS is unreachable: the message of task %s is left", record.id)
            return False
        try:
            stored = await self._js.get_msg(TASK_STREAM, seq=sequence)
            if not is_its((stored.headers or {}).get("Nats-Msg-Id", "")):
                return False
            await self._js.delete_msg(TASK_STREAM, sequence)
        except NotFoundError:
            return False  # An agent took it and acked it, or the stream's max age removed it.
        except APIError as error:
            if error.err_code != NO_MESSAGE_FOUND:  # else gone since the get, as above
                log.warning("deleting the message of task %s failed: %s", record.id, error)
            return False
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("deleting the message of task %s failed; it is left: %s", record.id, error)
            return False
        return True


def _of_task(message_id: str, task_id: str) -> bool:
    """Whether `message_id` is the Nats-Msg-Id of a WorkItem of the task (records.publish_id)."""
    return message_id == task_id or message_id.startswith(f"{task_id}.")
