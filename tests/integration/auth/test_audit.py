"""The audit log with a real nats-server: records outlive auth being down, edge refusals land,
a trickle of records is stored in a few inserts, the writer's ack wait is a setting."""

import asyncio
import secrets
from collections.abc import Sequence
from pathlib import Path

import grpc
import nats.js.errors
import pytest

from farm.audit.v1 import audit_pb2, audit_pb2_grpc
from farm_auth.audit import DURABLE_NAME, AuditWriter
from farm_auth.audit_log import AuditFilter, AuditLog
from farm_auth.store import KeyStore
from farm_core.audit import audit_record
from farm_core.audit_publisher import AuditPublisher
from farm_core.db import async_database_url
from farm_core.nats_access import NatsAccess
from farm_core.queue import AUDIT_STREAM, connect, ensure_audit_stream
from tests.conftest import NatsServer
from tests.helpers import assert_eventually
from tests.integration.auth.conftest import (
    RPC_TIMEOUT,
    Auth,
    auth_settings,
    new_admin_key,
    running_auth,
)

pytestmark = pytest.mark.integration


async def records_of(auth: Auth, trace: str) -> list[audit_pb2.AuditRecord]:
    """The records of trace `trace`, as the bootstrap admin lists them."""
    async with grpc.aio.insecure_channel(auth.address) as channel:
        reply = await audit_pb2_grpc.AuditServiceStub(channel).ListAuditRecords(
            audit_pb2.ListAuditRecordsRequest(page_size=1000),
            metadata=await auth.as_key(auth.admin_key),
            timeout=RPC_TIMEOUT,
        )
    return [r for r in reply.audit_records if r.trace_id == trace]


async def published_cancel_record(nats_server: NatsServer, outcome: str, target: str) -> str:
    """Publishes a scheduler's CancelTask record with `outcome` while no auth runs; its trace."""
    trace = secrets.token_hex(16)
    # The scheduler (or auth) makes the stream; publishers only send to it.
    access = NatsAccess(nats_server.url)
    connection = await connect(access, "test-audit-stream")
    await ensure_audit_stream(connection.jetstream())
    await connection.close()
    publisher = AuditPublisher(access, "scheduler", capacity=10)
    publisher.submit(
        audit_record(
            source="scheduler",
            rpc="/farm.tasks.v1.TaskService/CancelTask",
            outcome=outcome,
            headers={"x-request-id": trace},
            target=target,
        )
    )
    await assert_eventually(lambda: publisher.pending == 0, within=10)
    await publisher.close(grace_seconds=5)
    return trace


async def test_a_record_published_while_auth_is_down_is_written_once_it_is_back(
    farm_home: Path, database_url: str, nats_server: NatsServer
) -> None:
    trace = await published_cancel_record(nats_server, "OK", "task_1")

    settings = auth_settings(farm_home, database_url, new_admin_key(), NATS_URL=nats_server.url)
    async with running_auth(settings) as auth:

        async def written() -> bool:
            return len(await records_of(auth, trace)) == 1

        await assert_eventually(written, within=15)
        [record] = await records_of(auth, trace)

    assert (record.rpc, record.target, record.source) == (
        "/farm.tasks.v1.TaskService/CancelTask",
        "task_1",
        "scheduler",
    )


async def test_the_audit_consumer_redelivers_after_the_configured_ack_wait(
    farm_home: Path, database_url: str, nats_server: NatsServer
) -> None:
    settings = auth_settings(
        farm_home,
        database_url,
        new_admin_key(),
        NATS_URL=nats_server.url,
        audit_ack_wait_seconds=2.5,
    )
    connection = await connect(NatsAccess(nats_server.url), "test-audit-ack-wait")
    js = connection.jetstream()
    try:
        async with running_auth(settings):

            async def configured() -> bool:
                try:
                    info = await js.consumer_info(AUDIT_STREAM, DURABLE_NAME)
                except nats.js.errors.NotFoundError:
                    return False
                return bool(info.config.ack_wait == 2.5)

            await assert_eventually(configured, within=15)
    finally:
        await connection.close()


async def test_a_refusal_at_the_edge_is_recorded_without_a_tenant(
    farm_home: Path, database_url: str, nats_server: NatsServer
) -> None:
    settings = auth_settings(farm_home, database_url, new_admin_key(), NATS_URL=nats_server.url)
    trace = secrets.token_hex(16)
    async with running_auth(settings) as auth:
        refused = await auth.check("Bearer bf_unknown", {"x-request-id": trace})
        assert refused.code != 0

        async def written() -> bool:
            return len(await records_of(auth, trace)) == 1

        await assert_eventually(written, within=15)
        [record] = await records_of(auth, trace)

    assert (record.rpc, record.outcome, record.source, record.tenant) == (
        "POST /v1/tasks",
        "UNAUTHENTICATED",
        "edge",
        "",
    )
    assert record.message == "unknown API key"


class CountedWrites(AuditLog):
    """An audit log that counts the inserts asked of it."""

    writes = 0

    async def add(self, records: Sequence[audit_pb2.AuditRecord]) -> None:
        self.writes += 1
        await super().add(records)


async def test_a_trickle_of_records_is_stored_in_a_few_inserts(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    store = KeyStore(async_database_url("", tmp_path / "auth.db"))
    await store.start()
    audit_log = CountedWrites(store.engine)
    access = NatsAccess(nats_server.url)
    connection = await connect(access, "test-audit-stream")
    await ensure_audit_stream(connection.jetstream())
    await connection.close()
    writer = AuditWriter(audit_log, access, retention_days=0, gather_seconds=0.3)
    publisher = AuditPublisher(access, "scheduler", capacity=100)
    writer.start()
    trace = secrets.token_hex(16)
    try:
        # One record every 20 ms for most of a second, as single creates make them.
        for _ in range(40):
            publisher.submit(
                audit_record(
                    source="scheduler",
                    rpc="/farm.tasks.v1.TaskService/CreateTask",
                    outcome="OK",
                    headers={"x-request-id": trace},
                )
            )
            await asyncio.sleep(0.02)

        async def all_written() -> bool:
            return len(await audit_log.list(AuditFilter(), None, 100)) == 40

        await assert_eventually(all_written, within=15, message="records are missing")
    finally:
        await publisher.close(grace_seconds=5)
        await writer.stop()
        await store.close()
    assert audit_log.writes <= 8


async def test_an_outcome_is_taken_in_any_case_and_an_unknown_one_refused(
    farm_home: Path, database_url: str, nats_server: NatsServer
) -> None:
    trace = await published_cancel_record(nats_server, "PERMISSION_DENIED", "task_2")

    settings = auth_settings(farm_home, database_url, new_admin_key(), NATS_URL=nats_server.url)
    async with running_auth(settings) as auth:
        await assert_eventually(lambda: records_of(auth, trace), within=15)
        async with grpc.aio.insecure_channel(auth.address) as channel:
            stub = audit_pb2_grpc.AuditServiceStub(channel)
            metadata = await auth.as_key(auth.admin_key)

            async def traced(outcome: str) -> list[str]:
                reply = await stub.ListAuditRecords(
                    audit_pb2.ListAuditRecordsRequest(page_size=1000, outcome=outcome),
                    metadata=metadata,
                    timeout=RPC_TIMEOUT,
                )
                return [r.outcome for r in reply.audit_records if r.trace_id == trace]

            assert await traced("permission_denied") == ["PERMISSION_DENIED"]
            assert await traced(" Permission_Denied ") == ["PERMISSION_DENIED"]
            assert await traced("ok") == []
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await traced("denied")
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == (
        "outcome: must be OK or a gRPC status code name, got 'denied'"
    )
