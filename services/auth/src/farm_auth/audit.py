"""Writes the farm's audit records to SQL: a durable pull consumer on FARM_AUDIT.

Every service publishes its AuditRecords to the stream (farm_core.audit); this
consumer stores them in batches and acks after the commit, so records published
while auth was down are written when it is back. After a part-full batch it lets
records gather for a moment, so a steady trickle (one record per create) is
stored in a few batched inserts instead of one transaction per record. Apart
from it, and whether NATS is reachable or not, records past their retention are
deleted every hour, by one replica at a time (farm_core.sweep_turns).
"""

import asyncio
import datetime as dt
import functools
import logging

from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy.exc import SQLAlchemyError

from farm.audit.v1 import audit_pb2
from farm_auth.audit_log import AuditLog
from farm_auth.models import sweep_leases
from farm_core.cancel import cancel_and_wait
from farm_core.metric_series import start_at_zero
from farm_core.nats_access import NatsAccess
from farm_core.nats_link import NatsLink
from farm_core.pulls import Puller
from farm_core.queue import AUDIT_STREAM, ensure_audit_stream, settle
from farm_core.request_text import scrub_nul
from farm_core.retention import RETENTION_CHECK_SECONDS, retention_loop
from farm_core.sweep_turns import ROUND_OUTCOMES, SweepTurns, sweep_rounds

log = logging.getLogger(__name__)

PURGE_SWEEP = "auth-audit-purge"
"""The audit purge's name: its lease's row, its log lines, `farm_sweep_rounds_total`'s `sweep`."""
start_at_zero(sweep_rounds, sweep=(PURGE_SWEEP,), outcome=ROUND_OUTCOMES)

DURABLE_NAME = "auth-audit"
FETCH_BATCH = 256
FETCH_WAIT_SECONDS = 2.0
RETRY_SECONDS = 1.0
PURGE_LEASE_SECONDS = 600.0
"""How long a replica's turn at the purge lasts unrenewed: its one DELETE cannot renew it,
so should one outlast it another replica may purge too, which is harmless."""


class AuditWriter:
    """Pulls AuditRecords from JetStream and stores them; connects in the background."""

    def __init__(
        self,
        audit_log: AuditLog,
        nats: NatsAccess,
        retention_days: int,
        replicas: int = 1,
        gather_seconds: float = 0.0,
        ack_wait_seconds: float = 30.0,
    ) -> None:
        self._log = audit_log
        self._gather_seconds = gather_seconds
        self._ack_wait_seconds = ack_wait_seconds
        self._nats = NatsLink(nats, DURABLE_NAME)
        self._replicas = replicas
        self._writing: asyncio.Task[None] | None = None
        # The replicas take turns (farm_core.sweep_turns): one purges a round, the others skip it.
        self._turns = SweepTurns(
            audit_log.engine,
            sweep_leases,
            PURGE_SWEEP,
            lease_seconds=PURGE_LEASE_SECONDS,
            hold_seconds=RETENTION_CHECK_SECONDS,
        )
        self._purging = retention_loop(
            PURGE_SWEEP,
            self._purge_in_turn,
            retention_days,
            survives=(SQLAlchemyError, OSError),
        )

    def start(self) -> None:
        """Starts connecting and writing, and the retention purge; never waits for NATS."""
        self._writing = asyncio.create_task(self._run(), name="auth-audit")
        if self._purging is not None:
            self._purging.start()

    async def stop(self) -> None:
        """Stops writing; a batch fetched and not acked comes again after the ack wait."""
        writing, self._writing = self._writing, None
        if writing is not None:
            await cancel_and_wait(writing, "the audit writer")
        if self._purging is not None:
            await self._purging.cancel()
            try:
                await self._turns.release()
            except (SQLAlchemyError, OSError) as error:
                log.warning("giving the audit purge's turn up failed (it ends anyway): %s", error)
        await self._nats.close()

    async def _run(self) -> None:
        subscription = await self._nats.open(
            functools.partial(
                _subscribe, replicas=self._replicas, ack_wait_seconds=self._ack_wait_seconds
            )
        )
        puller = Puller(
            subscription, FETCH_BATCH, FETCH_WAIT_SECONDS, "audit records", RETRY_SECONDS
        )
        while True:
            messages = await puller.fetch()
            if messages:
                await self._store(messages)
            if messages and len(messages) < FETCH_BATCH and self._gather_seconds > 0:
                await asyncio.sleep(self._gather_seconds)

    async def _store(self, messages: list[Msg]) -> None:
        records: list[audit_pb2.AuditRecord] = []
        parsed: list[Msg] = []
        for message in messages:
            record = audit_pb2.AuditRecord()
            try:
                record.ParseFromString(message.data)
            except DecodeError as error:
                log.error(
                    "dropping a message on %s: not an AuditRecord: %s", message.subject, error
                )
                await settle(message.term(), "an audit record")
                continue
            # A refused call's target or message may hold a NUL (the call's own text),
            # which PostgreSQL cannot store: the batch would fail again and again.
            scrub_nul(record)
            records.append(record)
            parsed.append(message)
        try:
            await self._log.add(records)
        except (SQLAlchemyError, OSError) as error:
            log.warning("storing %d audit records failed: %s; they come again", len(records), error)
            for message in parsed:
                await settle(message.nak(delay=RETRY_SECONDS), "an audit record")
            return
        for message in parsed:
            await settle(message.ack(), "an audit record")

    async def _purge_in_turn(self, cutoff: dt.datetime) -> None:
        await self._turns.run(lambda: self._purge(cutoff))

    async def _purge(self, cutoff: dt.datetime) -> None:
        deleted = await self._log.purge(cutoff)
        if deleted:
            log.info("deleted %d audit records older than %s", deleted, cutoff)


async def _subscribe(
    js: JetStreamContext, replicas: int, ack_wait_seconds: float
) -> JetStreamContext.PullSubscription:
    """Binds the durable consumer, creating (or updating) it and the stream if needed."""
    await ensure_audit_stream(js, replicas=replicas)
    await js.add_consumer(
        AUDIT_STREAM,
        ConsumerConfig(
            name=DURABLE_NAME,
            durable_name=DURABLE_NAME,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=ack_wait_seconds,
        ),
    )
    return await js.pull_subscribe_bind(durable=DURABLE_NAME, stream=AUDIT_STREAM)
