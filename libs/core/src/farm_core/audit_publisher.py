"""Sends audit records to the FARM_AUDIT stream from a bounded queue that never blocks a call."""

import asyncio
import contextlib
import logging

from nats.js import JetStreamContext
from prometheus_client import Counter

from farm.audit.v1 import audit_pb2
from farm_core.cancel import cancel_and_wait
from farm_core.nats_access import NatsAccess
from farm_core.nats_link import NatsLink
from farm_core.queue import audit_subject

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 5.0
RETRY_SECONDS = 1.0

audit_records_total = Counter(
    "farm_audit_records_total",
    "Audit records by what became of them: published, or dropped (queue full or shut down).",
    ["outcome"],
)
for _outcome in ("published", "dropped"):
    audit_records_total.labels(_outcome)


class AuditPublisher:
    """Queues audit records and publishes them to JetStream in the background.

    `submit` never waits: when the queue is full (NATS down for long) the record is
    dropped, counted and logged, so auditing cannot slow or fail the call it records.
    The NATS connection is made on the first record, so a part that never records
    anything never connects.
    """

    def __init__(self, nats: NatsAccess, source: str, capacity: int) -> None:
        self._subject = audit_subject(source)
        self._nats = NatsLink(nats, f"audit-{self._subject}")
        self._queue: asyncio.Queue[audit_pb2.AuditRecord] = asyncio.Queue(maxsize=capacity)
        self._sender: asyncio.Task[None] | None = None
        self._dropped = 0

    def submit(self, record: audit_pb2.AuditRecord) -> None:
        """Queues `record` for publishing; drops it (counted, logged) if the queue is full."""
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self._drop(record, "the audit queue is full")
            return
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_all(), name=f"audit-{self._subject}")

    @property
    def pending(self) -> int:
        """Records queued and not published yet."""
        return self._queue.qsize()

    async def close(self, grace_seconds: float) -> None:
        """Publishes what is queued for up to `grace_seconds`, then drops the rest."""
        if self._sender is not None:
            if self._nats.is_connected:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._queue.join(), grace_seconds)
            await cancel_and_wait(self._sender, "the audit sender")
            self._sender = None
        await self._nats.close(grace_seconds)
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
            record = await self._queue.get()
            try:
                await self._publish(js, record)
            finally:
                self._queue.task_done()

    async def _publish(self, js: JetStreamContext, record: audit_pb2.AuditRecord) -> None:
        """Publishes `record`, retrying while NATS is away; the record id makes a retry safe."""
        while True:
            try:
                await js.publish(
                    self._subject,
                    record.SerializeToString(),
                    timeout=PUBLISH_TIMEOUT_SECONDS,
                    headers={"Nats-Msg-Id": record.id},
                )
                audit_records_total.labels("published").inc()
                return
            except Exception as error:  # NATS away: keep the record, retry
                log.warning("audit: publishing %s failed (%s); retrying", record.id, error)
                await asyncio.sleep(RETRY_SECONDS)


async def _jetstream(js: JetStreamContext) -> JetStreamContext:
    """`js` as it is: auth and the scheduler make the audit stream, a publisher only sends.

    Until the stream exists a publish finds no responder and is retried.
    """
    return js
