"""Counts the deliveries of each task that only waited, so they do not count as attempts.

A delivery handed back because the host's breaker was open, the host or the
tenant was busy or the agent was draining is a wait; the task's attempt number is
its delivery count less its waits. The count lives in the `farm_task_waits` bucket
under the task id and the message's stream sequence (a task queued again is a new
message, counted afresh), and is read only for a message delivered more than once.
A delivery handed back for a retry after a failed attempt is counted too, under the
key with `.retries` appended: a redelivery whose every earlier delivery was handed
back as a wait or a retry has no earlier attempt that may still run (holders.py).

One delivery reads its wait count at most once (`DeliveryWaits`): a tenant-busy
hand-back of a held backlog needs it three times (the attempt number, whether every
earlier delivery was handed back, the count to add to), and every round trip holds
one of the agent's few places.
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
    Versioned,
    compare_and_set,
    is_valid_key,
    open_own,
    read,
)
from farm_agent.metrics import task_waits_total
from farm_core.metric_series import start_at_zero

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


start_at_zero(task_waits_total, reason=WaitReason)


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
        return await DeliveryWaits(self, key, deliveries).attempt_number()

    async def read_waits(self, key: str) -> Versioned[int] | None:
        """The wait count of `key` with its revision; None when it could not be read."""
        try:
            return await self._kv.run(lambda kv: read(kv, key, _decode))
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("could not read the waits of %s: %s", key, error)
            return None

    async def read_retries(self, key: str) -> int | None:
        """The retries counted under `key`; None when they could not be read."""
        try:
            return (await self._kv.run(lambda kv: read(kv, _retries_key(key), _decode))).value or 0
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("could not read the retries of %s: %s", key, error)
            return None

    async def add_wait(
        self, key: str, known: Versioned[int] | None = None
    ) -> Versioned[int] | None:
        """Counts the current delivery of the task as a wait; the count stored, if it was.

        `known`: the count as last read, tried first (one update if nobody changed it since;
        else the entry is read again, so no other agent's count is lost).
        """
        if not is_valid_key(key):
            return None
        try:
            return await self._kv.run(
                lambda kv: compare_and_set(kv, key, _one_more, _decode, _encode, known)
            )
        except (nats.errors.Error, TimeoutError, Contended) as error:
            log.warning("could not count a wait of %s (an attempt then): %s", key, error)
            return None

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
        return await DeliveryWaits(self, key, deliveries).all_handed_back()

    async def forget(self, key: str) -> None:
        """Drops the task's counts once it has ended."""
        if not is_valid_key(key):
            return
        try:
            await self._kv.run(lambda kv: kv.purge(key))
            await self._kv.run(lambda kv: kv.purge(_retries_key(key)))
        except (nats.errors.Error, TimeoutError) as error:
            log.debug("could not drop the waits of %s (they expire): %s", key, error)


class DeliveryWaits:
    """The wait records of one delivery of a task, its wait count read at most once.

    A count read earlier in the delivery can only be lower than the stored one (counts
    only grow): the attempt number it gives is higher (the task fails sooner, never
    later), `all_handed_back` says False sooner (holders are looked for), and a wait
    added on it is stored by compare-and-set, which reads again if the entry changed.
    """

    def __init__(self, ledger: WaitLedger, key: str, deliveries: int) -> None:
        self.key = key
        self.deliveries = deliveries
        self._ledger = ledger
        self._waits: Versioned[int] | None = None
        self._read = False

    async def _waits_read(self) -> Versioned[int] | None:
        """The wait count, read on first use; None when unreadable or never counted."""
        if not self._read and self.deliveries > 1 and is_valid_key(self.key):
            self._read = True
            self._waits = await self._ledger.read_waits(self.key)
        return self._waits

    async def attempt_number(self) -> int:
        """The attempt the delivery is: deliveries so far less those that only waited."""
        deliveries = self.deliveries
        if deliveries <= 1 or not is_valid_key(self.key):
            return max(deliveries, 1)
        # Unread, a wait counts as an attempt: that fails a task sooner; never later.
        waits = await self._waits_read()
        return max(deliveries - ((waits.value or 0) if waits else 0), 1)

    async def all_handed_back(self) -> bool:
        """Whether each delivery before this one was handed back as a wait or a retry.

        False when unknown: the redelivery then looks for an earlier attempt still running.
        The retries are read only when the waits alone do not account for every delivery.
        """
        if self.deliveries <= 1:
            return True
        if not is_valid_key(self.key):
            return False
        waits = await self._waits_read()
        if waits is None:
            return False
        handed_back = waits.value or 0
        if handed_back >= self.deliveries - 1:
            return True
        retries = await self._ledger.read_retries(self.key)
        return retries is not None and handed_back + retries >= self.deliveries - 1

    async def add_wait(self) -> None:
        """Counts this delivery as a wait, on the count it read.

        A first delivery reads none: its count starts absent (if another delivery of
        the message made it meanwhile, the create fails and the count is read then).
        """
        known = Versioned[int](None, 0) if self.deliveries <= 1 else self._waits
        self._waits = await self._ledger.add_wait(self.key, known)

    async def add_retry(self) -> None:
        """Counts this delivery as a failed attempt handed back for a retry."""
        await self._ledger.add_retry(self.key)

    async def forget(self) -> None:
        """Drops the task's counts once it has ended."""
        await self._ledger.forget(self.key)


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
