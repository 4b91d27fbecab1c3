"""Counts the deliveries of each task that only waited, so they do not count as attempts.

A delivery handed back because the host's breaker was open, the host or the
tenant was busy or the agent was draining is a wait; the task's attempt number is
its delivery count less its waits. The count lives in the `farm_task_waits` bucket
under the task id and the message's stream sequence (a task queued again is a new
message, counted afresh), and is read only for a message delivered more than once.
A delivery handed back for a retry after a failed attempt is counted too, under the
key with `.retries` appended: a redelivery whose every earlier delivery was handed
back as a wait or a retry has no earlier attempt that may still run (holders.py).
"""

import enum
import logging
from collections.abc import Callable

import nats.errors
from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from farm.queue.v1 import queue_pb2
from farm_agent.kv import (
    TASK_WAITS_BUCKET,
    Contended,
    OwnBucket,
    compare_and_set,
    is_valid_key,
    open_own,
    read,
)
from farm_agent.metrics import task_waits_total

log = logging.getLogger(__name__)


class WaitReason(enum.StrEnum):
    """Why a delivery was handed back without using an attempt (`agent_task_waits_total`)."""

    BREAKER = "breaker_open"
    HOST_BUSY = "host_limit"
    TENANT_BUSY = "tenant_limit"
    DRAINING = "draining"
    # A session took the agent's last free place while the task was being fetched.
    NO_PLACE = "no_place"
    # Its route claim (farm_routes) could not be read while NATS was down: whether it may
    # start here is unknown.
    ROUTE_UNKNOWN = "route_unknown"
    # An earlier delivery of it may still run, here or on an agent that still beats.
    HELD_ELSEWHERE = "held_elsewhere"


def wait_key(task_id: str, message: Msg) -> str:
    """The key of one queuing of a task: its id and its message's stream sequence."""
    return f"{task_id}.{message.metadata.sequence.stream}"


def _retries_key(key: str) -> str:
    return f"{key}.retries"


def _decode(data: bytes) -> int:
    return int(data.decode())


def _encode(count: int) -> bytes:
    return str(count).encode()


def _one_more(count: int | None) -> int:
    return (count or 0) + 1


class WaitLedger:
    """Reads and adds to the wait-only deliveries of tasks, by `wait_key`."""

    @classmethod
    async def open(
        cls,
        js: JetStreamContext,
        replicas: int = 1,
        nats_connected: Callable[[], bool] = lambda: True,
    ) -> "WaitLedger":
        """The ledger on the farm's bucket (made again if deleted)."""
        return cls(await open_own(js, TASK_WAITS_BUCKET, replicas, nats_connected))

    def __init__(self, kv: KeyValue | OwnBucket) -> None:
        self._kv = kv if isinstance(kv, OwnBucket) else OwnBucket(kv)

    async def attempt_number(self, key: str, deliveries: int) -> int:
        """The attempt a delivery is: deliveries so far less those that only waited."""
        if deliveries <= 1 or not is_valid_key(key):
            return max(deliveries, 1)
        try:
            waits = (await self._kv.run(lambda kv: read(kv, key, _decode))).value or 0
        except (nats.errors.Error, TimeoutError) as error:
            # Counting a wait as an attempt fails a task sooner; never later.
            log.warning("could not read the waits of %s: %s", key, error)
            waits = 0
        return max(deliveries - waits, 1)

    async def add_wait(self, key: str) -> None:
        """Counts the current delivery of the task as a wait."""
        if not is_valid_key(key):
            return
        try:
            await self._kv.run(lambda kv: compare_and_set(kv, key, _one_more, _decode, _encode))
        except (nats.errors.Error, TimeoutError, Contended) as error:
            log.warning("could not count a wait of %s (an attempt then): %s", key, error)

    async def add_retry(self, key: str) -> None:
        """Counts the current delivery as a failed attempt handed back for a retry."""
        if not is_valid_key(key):
            return
        try:
            await self._kv.run(
                lambda kv: compare_and_set(kv, _retries_key(key), _one_more, _decode, _encode)
            )
        except (nats.errors.Error, TimeoutError, Contended) as error:
            log.warning(
                "could not count a retry of %s (its redelivery looks for holders): %s", key, error
            )

    async def all_handed_back(self, key: str, deliveries: int) -> bool:
        """Whether each delivery before this one was handed back as a wait or a retry.

        False when unknown: the redelivery then looks for an earlier attempt still running.
        """
        if deliveries <= 1:
            return True
        if not is_valid_key(key):
            return False
        try:
            waits = (await self._kv.run(lambda kv: read(kv, key, _decode))).value or 0
            retries = (
                await self._kv.run(lambda kv: read(kv, _retries_key(key), _decode))
            ).value or 0
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("could not read the hand-backs of %s: %s", key, error)
            return False
        return waits + retries >= deliveries - 1

    async def forget(self, key: str) -> None:
        """Drops the task's counts once it has ended."""
        if not is_valid_key(key):
            return
        try:
            await self._kv.run(lambda kv: kv.purge(key))
            await self._kv.run(lambda kv: kv.purge(_retries_key(key)))
        except (nats.errors.Error, TimeoutError) as error:
            log.debug("could not drop the waits of %s (they expire): %s", key, error)


async def hand_back_unstarted(message: Msg, reason: WaitReason, waits: WaitLedger | None) -> None:
    """Hands back a task fetched but not started; the delivery does not count."""
    try:
        task_id = queue_pb2.WorkItem.FromString(message.data).task_id
    except DecodeError:
        task_id = ""
    task_waits_total.labels(reason=reason.value).inc()
    if waits is not None and task_id:
        await waits.add_wait(wait_key(task_id, message))
    try:
        await message.nak()
    except nats.errors.Error as error:
        log.warning("could not hand back a task fetched but not started: %s", error)
