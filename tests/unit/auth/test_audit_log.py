"""The audit_records table: redeliveries stored once, filters, paging order, retention."""

import datetime as dt

from farm.audit.v1 import audit_pb2
from farm_auth.audit_log import AuditFilter, AuditLog

NOW = dt.datetime(2026, 1, 2, 12, 0, tzinfo=dt.UTC)


def record(record_id: str, minutes_ago: int, **fields: str) -> audit_pb2.AuditRecord:
    made = audit_pb2.AuditRecord(
        id=record_id,
        tenant=fields.get("tenant", "acme"),
        rpc=fields.get("rpc", "/farm.tasks.v1.TaskService/CreateTask"),
        outcome=fields.get("outcome", "OK"),
    )
    made.time.FromDatetime(NOW - dt.timedelta(minutes=minutes_ago))
    return made


async def test_a_redelivered_record_is_stored_once(audit_log: AuditLog) -> None:
    await audit_log.add([record("a", 1)])
    await audit_log.add([record("a", 1), record("b", 0)])
    assert [r.id for r in await audit_log.list(AuditFilter(), None, 10)] == ["b", "a"]


async def test_filters_select_by_tenant_short_or_full_rpc_outcome_and_time(
    audit_log: AuditLog,
) -> None:
    await audit_log.add(
        [
            record("old", 60),
            record("other", 1, tenant="globex"),
            record("denied", 2, outcome="PERMISSION_DENIED"),
            record("cancel", 3, rpc="/farm.tasks.v1.TaskService/CancelTask"),
        ]
    )

    async def ids(where: AuditFilter) -> list[str]:
        return [r.id for r in await audit_log.list(where, None, 10)]

    assert await ids(AuditFilter(tenant="globex")) == ["other"]
    assert await ids(AuditFilter(rpc="CancelTask")) == ["cancel"]
    assert await ids(AuditFilter(rpc="/farm.tasks.v1.TaskService/CancelTask")) == ["cancel"]
    assert await ids(AuditFilter(outcome="PERMISSION_DENIED")) == ["denied"]
    assert await ids(AuditFilter(since=NOW - dt.timedelta(minutes=10))) == [
        "other",
        "denied",
        "cancel",
    ]


async def test_purge_deletes_only_records_past_retention(audit_log: AuditLog) -> None:
    await audit_log.add([record("old", 60), record("new", 1)])
    assert await audit_log.purge(NOW - dt.timedelta(minutes=30)) == 1
    assert [r.id for r in await audit_log.list(AuditFilter(), None, 10)] == ["new"]
