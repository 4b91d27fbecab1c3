"""The audit writer's retention purge runs on its own, whether NATS is reachable or not, and
on one replica at a time."""

import datetime as dt

from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from farm.audit.v1 import audit_pb2
from farm_auth.audit import AuditWriter
from farm_auth.audit_log import AuditFilter, AuditLog
from farm_core.db import utcnow
from farm_core.nats_access import NatsAccess
from tests.helpers import assert_eventually

# Nothing listens on port 1: the writer's NATS connection keeps failing.
UNREACHABLE_NATS = NatsAccess("nats://127.0.0.1:1")


def record(record_id: str, days_ago: int) -> audit_pb2.AuditRecord:
    made = audit_pb2.AuditRecord(id=record_id, tenant="acme", rpc="CreateTask", outcome="OK")
    made.time.FromDatetime(utcnow() - dt.timedelta(days=days_ago))
    return made


async def stored_ids(audit_log: AuditLog) -> list[str]:
    return [kept.id for kept in await audit_log.list(AuditFilter(), None, 10)]


async def only_new_kept(audit_log: AuditLog) -> bool:
    return await stored_ids(audit_log) == ["new"]


async def test_records_past_retention_are_deleted_while_nats_is_unreachable(
    audit_log: AuditLog,
) -> None:
    await audit_log.add([record("old", 3), record("new", 0)])
    writer = AuditWriter(audit_log, UNREACHABLE_NATS, retention_days=2)
    writer.start()
    try:
        await assert_eventually(
            lambda: only_new_kept(audit_log), within=10, message="the old record stayed"
        )
    finally:
        await writer.stop()


class CountedPurges(AuditLog):
    """An audit log that counts the purges asked of it."""

    purges = 0

    async def purge(self, before: dt.datetime) -> int:
        self.purges += 1
        return await super().purge(before)


async def test_retention_zero_keeps_every_record(auth_engine: AsyncEngine) -> None:
    kept, witness = CountedPurges(auth_engine), CountedPurges(auth_engine)
    await kept.add([record("old", 3000)])
    forever = AuditWriter(kept, UNREACHABLE_NATS, retention_days=0)
    # A witness instead of a sleep: a writer started after it whose first purge (which
    # spares a record of 3000 days) shows that a purge of `forever` would have run too.
    purging = AuditWriter(witness, UNREACHABLE_NATS, retention_days=5000)
    forever.start()
    purging.start()
    try:
        await assert_eventually(lambda: witness.purges > 0, message="the witness never purged")
    finally:
        await forever.stop()
        await purging.stop()

    assert kept.purges == 0
    assert await stored_ids(kept) == ["old"]


def purge_rounds(outcome: str) -> float:
    """This process's rounds of the audit purge that were `outcome` (swept, skipped)."""
    labels = {"sweep": "auth-audit-purge", "outcome": outcome}
    return REGISTRY.get_sample_value("farm_sweep_rounds_total", labels) or 0.0


async def test_replicas_purging_at_once_take_turns(auth_engine: AsyncEngine) -> None:
    first, second = CountedPurges(auth_engine), CountedPurges(auth_engine)
    await first.add([record("old", 3), record("new", 0)])
    swept, skipped = purge_rounds("swept"), purge_rounds("skipped")
    writers = [AuditWriter(log, UNREACHABLE_NATS, retention_days=2) for log in (first, second)]
    for writer in writers:
        writer.start()
    try:
        await assert_eventually(
            lambda: purge_rounds("swept") + purge_rounds("skipped") == swept + skipped + 2,
            message="both replicas' first rounds did not run",
        )
    finally:
        for writer in writers:
            await writer.stop()

    # One replica purged; the other's round, at the same time, found the turn taken.
    assert (first.purges + second.purges, purge_rounds("swept") - swept) == (1, 1)
    assert await stored_ids(first) == ["new"]
