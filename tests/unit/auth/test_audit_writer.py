"""The audit writer's retention purge runs on its own, whether NATS is reachable or not."""

import asyncio
import datetime as dt

from farm.audit.v1 import audit_pb2
from farm_auth.audit import AuditWriter
from farm_auth.audit_log import AuditFilter, AuditLog
from farm_core.db import utcnow
from tests.helpers import assert_eventually

# Nothing listens on port 1: the writer's NATS connection keeps failing.
UNREACHABLE_NATS = "nats://127.0.0.1:1"


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


async def test_retention_zero_keeps_every_record(audit_log: AuditLog) -> None:
    await audit_log.add([record("old", 3000)])
    writer = AuditWriter(audit_log, UNREACHABLE_NATS, retention_days=0)
    writer.start()
    # Time enough for a purge that should not run to have run.
    await asyncio.sleep(0.5)
    await writer.stop()
    assert await stored_ids(audit_log) == ["old"]
