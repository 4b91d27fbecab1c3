"""Whether an upload's task has ended: the scheduler's bucket of ended tasks, read over NATS.

An agent that goes on with a task after it ended (it had not yet heard the cancel,
or was cut off from NATS while the task was failed elsewhere: its attempts used up,
its deadline passed) would upload artifacts no result names, which count against
the tenant's byte quota. Storage keeps no task state; the scheduler puts the id of
such a task in the key-value bucket CANCEL_BUCKET with the reason
(`farm_core.task_ends`; agents read it before starting a task), and storage looks
the upload's task up there before it reserves or writes anything. Should NATS be
unreachable, uploads go on unchecked: the check is not worth failing uploads for.

Storage only looks the bucket up, never makes it: its NATS user may not (a create
would go unanswered and be logged as a permissions violation), and until the
scheduler has made it no task has ended.
"""

import asyncio
import logging

import nats.errors
from nats.js.errors import BucketNotFoundError, KeyNotFoundError
from nats.js.kv import KeyValue

from farm_core import task_ends
from farm_core.cancel import cancel_and_wait
from farm_core.errors import FailedPrecondition
from farm_core.kv import is_valid_key
from farm_core.nats_link import RETRY_SECONDS
from farm_core.queue import CANCEL_BUCKET
from farm_storage.nats_connection import StorageNats

log = logging.getLogger(__name__)

BUCKET_LOOKUP_SECONDS = 0.5
"""How often storage looks for the bucket again until the scheduler has made it."""


class TaskEnded(FailedPrecondition):
    """An upload for a task that has ended: no result can name what it would store."""


class EndedTasks:
    """Storage's view of which tasks have ended, through storage's NATS connection."""

    def __init__(self, nats: StorageNats) -> None:
        self._nats = nats
        self._opening: asyncio.Task[KeyValue] | None = None

    def start(self) -> None:
        """Begins opening the bucket (once connected, retrying); storage serves meanwhile."""
        if self._opening is None:
            self._opening = asyncio.create_task(self._open_bucket(), name="ended-tasks-open")

    async def check(self, task_id: str) -> None:
        """Raises TaskEnded if `task_id` is marked ended; returns if not, or if NATS cannot say."""
        ended = self._ended()
        if ended is None or not is_valid_key(task_id):
            return
        try:
            entry = await ended.get(task_id)
        except KeyNotFoundError:
            return
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("could not check whether task %s has ended: %s", task_id, error)
            return
        raise TaskEnded(
            f"task {task_id!r} has ended ({task_ends.reason_of(entry.value or b'')}): "
            "no result names what it would store; nothing was stored"
        )

    async def close(self) -> None:
        """Stops opening the bucket (the connection is StorageNats's to close)."""
        opening, self._opening = self._opening, None
        if opening is not None:
            await cancel_and_wait(opening, "opening the bucket of ended tasks")

    def _ended(self) -> KeyValue | None:
        """The bucket, if open and NATS connected now (a request now would wait for a reconnect)."""
        opening = self._opening
        if opening is None or not opening.done() or opening.cancelled():
            return None
        if opening.exception() is not None or not self._nats.is_connected:
            return None
        return opening.result()

    async def _open_bucket(self) -> KeyValue:
        js = await self._nats.jetstream()
        announced = False
        while True:
            try:
                return await js.key_value(CANCEL_BUCKET)
            except BucketNotFoundError:
                if not announced:
                    log.info("bucket %s not made yet; waiting for the scheduler", CANCEL_BUCKET)
                    announced = True
                await asyncio.sleep(BUCKET_LOOKUP_SECONDS)
            except Exception as error:  # NATS went away meanwhile, say: it comes back by itself
                log.warning("could not open bucket %s (%s); retrying", CANCEL_BUCKET, error)
                await asyncio.sleep(RETRY_SECONDS)
