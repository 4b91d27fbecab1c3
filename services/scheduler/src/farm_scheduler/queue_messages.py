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
its messages from 1. A delete that fails (NATS down or refusing) never fails the
task's end or move: it is kept in SQL (`queue_message_deletes`) and retried by the
republisher's rounds (`retry_pending`), a batch a round, until the message is gone.
"""

import enum
import json
import logging
from collections.abc import Sequence
from typing import cast

import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import APIError, NotFoundError
from sqlalchemy import RowMapping, Table
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from farm.tasks.v1 import tasks_pb2
from farm_core.queue import TASK_STREAM
from farm_scheduler.models import QueueMessageDeleteRow
from farm_scheduler.pipelined import gather_bounded
from farm_scheduler.records import TaskRecord
from farm_scheduler.retry_outbox import RetryOutbox

log = logging.getLogger(__name__)

DELETE_FAILED = 10057
"""JetStream's err_code for any delete that failed; its description says why."""
NOT_THERE = ("no message found", "stream store EOF")
"""The descriptions of a DELETE_FAILED whose message is not in the stream (others, such
as "message delete not permitted", are refusals to retry)."""

DELETE_SUBJECT = "$JS.API.STREAM.MSG.DELETE"
"""JetStream's API subject of a message delete, the stream's name appended."""

deletes = cast(Table, QueueMessageDeleteRow.__table__)


class Deleted(enum.Enum):
    """What a delete of a task's WorkItem came to."""

    DELETED = "deleted"
    ABSENT = "absent"
    """Nothing of the task's to delete there: taken and acked, aged out, or another's."""
    FAILED = "failed"
    """NATS was unreachable or refused: to retry."""


class QueueMessages:
    """Deletes the WorkItems of tasks that ended or moved while queued; retries failed deletes."""

    def __init__(self, nc: Client, js: JetStreamContext, engine: AsyncEngine) -> None:
        self._nc = nc
        self._js = js
        # A kept delete is of one message: the key tells it apart.
        self._kept = RetryOutbox(engine, deletes, identity=("task_id", "sequence"))

    async def ended(self, before: TaskRecord) -> bool:
        """Deletes the WorkItem of a task that ended; `before` is its record before the end.

        Only for a task that was QUEUED: a running one's message is its agent's to ack.
        True if a message was deleted.
        """
        if before.state.status != tasks_pb2.TASK_STATUS_QUEUED:
            return False
        return await self._delete_or_keep(before, None)

    async def ended_many(self, befores: Sequence[TaskRecord]) -> int:
        """`ended` for each of many tasks, their deletes under way together; how many went."""
        deleted = await gather_bounded([self.ended(before) for before in befores])
        for outcome in deleted:
            if isinstance(outcome, BaseException):
                raise outcome  # `ended` keeps what failed: this is an error of ours.
        return sum(outcome is True for outcome in deleted)

    async def moved(self, before: TaskRecord) -> bool:
        """Deletes the preferred region's WorkItem of a task the fallback moved.

        `before` is its record before the move. True if a message was deleted.
        """
        return await self._delete_or_keep(before, before.publish_id)

    async def retry_pending(self) -> int:
        """Retries up to a batch of kept deletes, least lately tried first; how many settled.

        A round stops at the first that fails again (NATS is still away), which goes
        to the back: one that JetStream keeps refusing holds up no other (`retry_outbox`).
        """
        if not self._nc.is_connected:
            return 0
        settled = await self._kept.retry(self._retry)
        if settled:
            log.info("settled %d queue message delete(s) held back while NATS was away", settled)
        return settled

    async def _retry(self, row: RowMapping) -> bool:
        """Makes a kept delete again; False if it failed again."""
        outcome = await self._delete(row["task_id"], row["sequence"], row["message_id"])
        return outcome is not Deleted.FAILED

    async def _delete_or_keep(self, record: TaskRecord, message_id: str | None) -> bool:
        """Deletes the task's WorkItem; keeps the delete for a retry if it fails."""
        sequence = record.queue_sequence
        if not record.published or sequence is None:
            return False  # Not in the stream yet, or published before the sequence was kept.
        outcome = await self._delete(record.id, sequence, message_id)
        if outcome is Deleted.FAILED:
            await self._keep(record.id, sequence, message_id)
        return outcome is Deleted.DELETED

    async def _delete(self, task_id: str, sequence: int, message_id: str | None) -> Deleted:
        """Deletes the message at `sequence` if it is `message_id` (None: any of the task's)."""
        if not self._nc.is_connected:
            log.info("NATS is unreachable: the message of task %s is deleted later", task_id)
            return Deleted.FAILED
        try:
            stored = await self._js.get_msg(TASK_STREAM, seq=sequence)
            stored_id = (stored.headers or {}).get("Nats-Msg-Id", "")
            if not _is_its(stored_id, task_id, message_id):
                return Deleted.ABSENT
            await self._delete_at(sequence)
        except NotFoundError:
            return Deleted.ABSENT  # An agent took it and acked it, or the stream's max age did.
        except APIError as error:
            if error.err_code == DELETE_FAILED and error.description in NOT_THERE:
                return Deleted.ABSENT  # gone since the get, as above
            log.warning("deleting the message of task %s failed: %s", task_id, error)
            return Deleted.FAILED
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("deleting the message of task %s failed; retrying: %s", task_id, error)
            return Deleted.FAILED
        return Deleted.DELETED

    async def _delete_at(self, sequence: int) -> None:
        """Removes FARM_TASKS' message at `sequence` without overwriting its bytes.

        JetStream's default delete (nats-py's delete_msg) erases the message on disk,
        a write of its size through the stream's one API queue: what made a batch
        cancel's deletes take seconds. The message is gone for readers either way.
        """
        request = json.dumps({"seq": sequence, "no_erase": True}).encode()
        answer = await self._nc.request(f"{DELETE_SUBJECT}.{TASK_STREAM}", request, timeout=5)
        body = json.loads(answer.data)
        if "error" in body:
            raise APIError.from_error(body["error"])

    async def _keep(self, task_id: str, sequence: int, message_id: str | None) -> None:
        """Notes a failed delete for retry_pending; the task's end or move stands either way."""
        row = {"task_id": task_id, "sequence": sequence, "message_id": message_id}
        try:
            await self._kept.keep(row)  # Clashed: kept already.
        except (SQLAlchemyError, OSError) as error:
            log.warning("keeping the failed delete of task %s's message failed: %s", task_id, error)


def _is_its(stored_id: str, task_id: str, message_id: str | None) -> bool:
    """Whether the Nats-Msg-Id `stored_id` is the one to delete (None: any of the task's)."""
    return stored_id == message_id if message_id is not None else _of_task(stored_id, task_id)


def _of_task(message_id: str, task_id: str) -> bool:
    """Whether `message_id` is the Nats-Msg-Id of a WorkItem of the task (records.publish_id)."""
    return message_id == task_id or message_id.startswith(f"{task_id}.")
