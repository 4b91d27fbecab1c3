"""Sends audit records to the FARM_AUDIT stream from a bounded queue that never blocks a call.

The records queued while a group is on its way are sent as the next group, pipelined:
a stream of creates costs one acknowledgement round trip per group, not per record.
A group's first record waits a short linger for more, so a trickle of calls shares
a group's cost instead of each paying a lone publish's; no caller waits for it.
"""

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from nats.js import JetStreamContext
from nats.js.api import PubAck
from prometheus_client import Counter, Histogram

from farm.audit.v1 import audit_pb2
from farm_core import pipelined
from farm_core.cancel import cancel_and_wait
from farm_core.nats_access import NatsAccess
from farm_core.nats_link import NatsLink
from farm_core.queue import audit_subject

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 5.0
RETRY_SECONDS = 1.0
SEND_GROUP_MAX = 500
"""Records sent before their acknowledgements are awaited; below nats-py's pending limit."""
DEFAULT_LINGER_SECONDS = 0.005

audit_records_total = Counter(
    "farm_audit_records_total",
    "Audit records by what became of them: published, or dropped (queue full or shut down).",
    ["outcome"],
)
for _outcome in ("published", "dropped"):
    audit_records_total.labels(_outcome)
audit_group_size = Histogram(
    "farm_audit_publish_group_size",
    "Audit records sent together, their acknowledgements awaited at once.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)


class AuditPublisher:
    """Queues audit records and publishes them to JetStream in the background.

    `submit` never waits: when the queue is full (NATS down for long) the record is
    dropped, counted and logged, so auditing cannot slow or fail the call it records.
    The NATS connection is made on the first record, so a part that never records
    anything never connects. A group is sent `linger_seconds` after its first record
    was taken, or at once when SEND_GROUP_MAX are waiting or the publisher closes.
    """

    def __init__(
        self,
        nats: NatsAccess,
        source: str,
        capacity: int,
        linger_seconds: float = DEFAULT_LINGER_SECONDS,
    ) -> None:
        self._subject = audit_subject(source)
        self._nats = NatsLink(nats, f"audit-{self._subject}")
        self._queue: asyncio.Queue[audit_pb2.AuditRecord] = asyncio.Queue(maxsize=capacity)
        self._sender: asyncio.Task[None] | None = None
        self._dropped = 0
        self._linger = linger_seconds
        # Set to end a linger early: a full group is waiting, or the publisher closes.
        self._send_now = asyncio.Event()
        self._closing = False

    def submit(self, record: audit_pb2.AuditRecord) -> None:
        """Queues `record` for publishing; drops it (counted, logged) if the queue is full."""
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self._drop(record, "the audit queue is full")
            return
        # With the group's first record held by a lingering sender, these fill it.
        if self._queue.qsize() + 1 >= SEND_GROUP_MAX:
            self._send_now.set()
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_all(), name=f"audit-{self._subject}")

    @property
    def pending(self) -> int:
        """Records queued and not published yet."""
        return self._queue.qsize()

    async def close(self, grace_seconds: float) -> None:
        """Publishes what is queued for up to `grace_seconds`, then drops the rest."""
        self._closing = True
        self._send_now.set()
        if self._sender is not None:
            if self._nats.is_connected:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._queue.join(), grace_seconds)
            await cancel_and_wait(self._sender, "the audit sender")
            self._sender = None
        await self._nats.close()
        while not self._queue.empty():
            self._drop(self._queue.get_nowait(), "the service stopped")

    def _drop(self, record: audit_pb2.AuditRecord, why: str) -> None:
        audit_records_total.labels("dropped").inc()
        self._dropped += 1
        # One line per thousand drops: a NATS outage must not flood the log.
        if self._dropped % 1000 == 1:
            log.warning(
                "audit record %s of %s dropped: %s (%d dropped so far)",
                record.id,
                record.rpc,
                why,
                self._dropped,
            )

    async def _send_all(self) -> None:
        js = await self._nats.open(_jetstream)
        while True:
            records = [await self._queue.get()]
            await self._linger_for_more()
            while len(records) < SEND_GROUP_MAX and not self._queue.empty():
                records.append(self._queue.get_nowait())
            try:
                await self._publish(js, records)
            finally:
                for _ in records:
                    self._queue.task_done()

    async def _linger_for_more(self) -> None:
        """Lets records gather behind a group's first for the linger, unless told to send now."""
        if self._linger <= 0 or self._closing:
            return
        self._send_now.clear()
        if self._queue.qsize() + 1 >= SEND_GROUP_MAX:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._linger):
                await self._send_now.wait()

    async def _publish(
        self, js: JetStreamContext, records: Sequence[audit_pb2.AuditRecord]
    ) -> None:
        """Publishes `records` pipelined, retrying those not stored while NATS is away.

        All are sent, then their acknowledgements awaited together, so a burst costs
        one round trip instead of one per record. A record JetStream did not confirm
        is sent again; its id makes the retry safe.
        """
        audit_group_size.observe(len(records))
        while records:
            acks: list[asyncio.Future[PubAck]] = []
            try:
                for record in records:
                    acks.append(
                        await pipelined.send(
                            js,
                            self._subject,
                            record.SerializeToString(),
                            {"Nats-Msg-Id": record.id},
                            PUBLISH_TIMEOUT_SECONDS,
                        )
                    )
            except Exception as error:  # NATS away: the rest are sent again below
                log.warning("audit: sending %s failed (%s); retrying", records[len(acks)].id, error)
            stored = await pipelined.confirmed(acks, PUBLISH_TIMEOUT_SECONDS)
            audit_records_total.labels("published").inc(len(stored))
            left = [
                record
                for index, record in enumerate(records)
                if index >= len(acks) or acks[index] not in stored
            ]
            if left:
                log.warning("audit: %d record(s) not stored; retrying", len(left))
                await asyncio.sleep(RETRY_SECONDS)
            records = left


async def _jetstream(js: JetStreamContext) -> JetStreamContext:
    """`js` as it is: auth and the scheduler make the audit stream, a publisher only sends.

    Until the stream exists a publish finds no responder and is retried.
    """
    return js
