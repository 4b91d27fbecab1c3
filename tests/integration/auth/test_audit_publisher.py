"""The audit publisher against a real nats-server: a burst is sent in pipelined groups,
a trickle lingers into one group that a close sends at once, and records sent before
their stream exists are stored once it does, each once."""

import asyncio
import secrets

import pytest
from prometheus_client import REGISTRY

from farm.audit.v1 import audit_pb2
from farm_core.audit import audit_record
from farm_core.audit_publisher import SEND_GROUP_MAX, AuditPublisher
from farm_core.nats_access import NatsAccess
from farm_core.queue import AUDIT_STREAM, audit_subject, connect, ensure_audit_stream
from tests.conftest import NatsServer
from tests.helpers import assert_eventually

pytestmark = pytest.mark.integration


def create_record(source: str) -> audit_pb2.AuditRecord:
    """The record of one CreateTask, as the scheduler makes it."""
    return audit_record(
        source=source,
        rpc="/farm.tasks.v1.TaskService/CreateTask",
        outcome="OK",
        headers={},
        target="task_1",
    )


def groups_sent() -> float:
    """How many groups of audit records this process has sent so far."""
    return REGISTRY.get_sample_value("farm_audit_publish_group_size_count") or 0.0


async def stored_on(access: NatsAccess, subject: str) -> int:
    """How many messages the audit stream holds on `subject`."""
    connection = await connect(access, "test-audit-count")
    try:
        info = await connection.jetstream().stream_info(AUDIT_STREAM, subjects_filter=subject)
    finally:
        await connection.close()
    return (info.state.subjects or {}).get(subject, 0)


async def stored_ids(access: NatsAccess, subject: str, count: int) -> list[str]:
    """The ids of the first `count` records the audit stream holds on `subject`, in order."""
    connection = await connect(access, "test-audit-read")
    ids: list[str] = []
    try:
        js = connection.jetstream()
        sequence = 1
        for _ in range(count):
            message = await js.get_msg(AUDIT_STREAM, seq=sequence, subject=subject, next=True)
            ids.append(audit_pb2.AuditRecord.FromString(message.data or b"").id)
            sequence = (message.seq or 0) + 1
    finally:
        await connection.close()
    return ids


async def ensure_stream(access: NatsAccess) -> None:
    """Makes the audit stream, as auth and the scheduler do at start."""
    connection = await connect(access, "test-audit-stream")
    try:
        await ensure_audit_stream(connection.jetstream())
    finally:
        await connection.close()


async def test_a_burst_of_records_is_sent_in_groups_and_each_is_stored_once(
    nats_server: NatsServer,
) -> None:
    access = NatsAccess(nats_server.url)
    await ensure_stream(access)
    source = f"burst{secrets.token_hex(4)}"
    publisher = AuditPublisher(access, source, capacity=1000)
    groups_before = groups_sent()
    try:
        for _ in range(300):
            publisher.submit(create_record(source))
        await assert_eventually(lambda: publisher.pending == 0, within=15)
    finally:
        await publisher.close(grace_seconds=5)

    assert await stored_on(access, audit_subject(source)) == 300
    # The 300 were queued before the sender ran: far fewer groups than records.
    assert 1 <= groups_sent() - groups_before <= 10


async def test_records_sent_before_their_stream_exists_are_stored_once_it_does(
    fresh_nats_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    access = NatsAccess(fresh_nats_server.url)
    source = f"early{secrets.token_hex(4)}"
    publisher = AuditPublisher(access, source, capacity=100)
    try:
        for _ in range(20):
            publisher.submit(create_record(source))
        # No stream takes them yet: the publisher keeps them and sends them again.
        await assert_eventually(lambda: "retrying" in caplog.text, within=10)
        await ensure_stream(access)

        async def all_stored() -> bool:
            return await stored_on(access, audit_subject(source)) == 20

        await assert_eventually(all_stored, within=15, message="records are missing")
    finally:
        await publisher.close(grace_seconds=5)
    assert publisher.pending == 0


async def test_records_made_one_at_a_time_within_the_linger_are_sent_as_one_group(
    nats_server: NatsServer,
) -> None:
    access = NatsAccess(nats_server.url)
    await ensure_stream(access)
    source = f"trickle{secrets.token_hex(4)}"
    subject = audit_subject(source)
    publisher = AuditPublisher(access, source, capacity=100, linger_seconds=1.0)
    try:
        first = create_record(source)
        publisher.submit(first)
        # Connected, and the first record's group sent, before the trickle starts.
        await assert_eventually(lambda: publisher.pending == 0, within=15)

        async def stored(count: int) -> bool:
            return await stored_on(access, subject) == count

        await assert_eventually(lambda: stored(1), within=15, message="the first is missing")
        groups_before = groups_sent()
        trickle = [create_record(source) for _ in range(5)]
        for record in trickle:
            publisher.submit(record)
            # The sender runs between two records, as between two calls.
            await asyncio.sleep(0.02)
        await assert_eventually(lambda: stored(6), within=15, message="records are missing")
        assert groups_sent() - groups_before == 1
        assert await stored_ids(access, subject, 6) == [first.id] + [r.id for r in trickle]
    finally:
        await publisher.close(grace_seconds=5)


async def test_a_lingering_group_is_sent_at_once_when_it_fills(
    nats_server: NatsServer,
) -> None:
    access = NatsAccess(nats_server.url)
    await ensure_stream(access)
    source = f"filling{secrets.token_hex(4)}"
    subject = audit_subject(source)
    publisher = AuditPublisher(access, source, capacity=1000, linger_seconds=600.0)
    try:
        publisher.submit(create_record(source))
        # The sender holds the group's first record and lingers.
        await assert_eventually(lambda: publisher.pending == 0, within=15)
        for _ in range(SEND_GROUP_MAX - 1):
            publisher.submit(create_record(source))

        async def stored_all() -> bool:
            return await stored_on(access, subject) == SEND_GROUP_MAX

        # Far below the linger: the full group does not wait it out.
        await assert_eventually(stored_all, within=15, message="the full group was not sent")
    finally:
        await publisher.close(grace_seconds=0)


async def test_a_close_sends_the_lingering_records_at_once_in_order(
    nats_server: NatsServer,
) -> None:
    access = NatsAccess(nats_server.url)
    await ensure_stream(access)
    source = f"closing{secrets.token_hex(4)}"
    subject = audit_subject(source)
    publisher = AuditPublisher(access, source, capacity=100, linger_seconds=600.0)
    groups_before = groups_sent()
    records = [create_record(source) for _ in range(5)]
    for record in records:
        publisher.submit(record)
    # The sender is connected and holds the first record, the others wait behind it.
    await assert_eventually(lambda: publisher.pending == 4, within=15)
    assert groups_sent() == groups_before

    try:
        # Far below the linger: the close does not wait it out.
        await asyncio.wait_for(publisher.close(grace_seconds=30), timeout=20)
    finally:
        await publisher.close(grace_seconds=0)  # a no-op after a close that ended

    assert publisher.pending == 0
    assert groups_sent() - groups_before == 1
    assert await stored_ids(access, subject, 5) == [record.id for record in records]
