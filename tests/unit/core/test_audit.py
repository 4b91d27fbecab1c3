"""The audit interceptor records changes and refusals; its publisher never holds a call up."""

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import REGISTRY

from farm.audit.v1 import audit_pb2
from farm.auth.v1 import auth_pb2, auth_pb2_grpc
from farm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from farm_core.audit import AuditInterceptor, audit_record, cancel_items, trace_id
from farm_core.audit_publisher import AuditPublisher
from farm_core.errors import NotFound, ResourceExhausted
from farm_core.free_ports import free_port
from farm_core.identity import IDENTITY_HEADER, Identity
from farm_core.interceptors import CallChain, ErrorMappingInterceptor, IdentityInterceptor
from farm_core.nats_access import NatsAccess
from farm_core.scopes import method_scopes
from farm_core.settings import FarmSettings
from tests.helpers import TEST_PUBLIC_KEY, TEST_SIGNER, StandInService, assert_eventually, serving

AUTH = "/farm.auth.v1.AuthService/"
TRACE = "0af7651916cd43dd8448eb211c80319c"


class FakeAuth(auth_pb2_grpc.AuthServiceServicer):
    async def CreateApiKey(self, request: Any, context: Any) -> auth_pb2.CreateApiKeyResponse:
        if request.name == "too-many":
            raise ResourceExhausted("keys: the tenant has too many")
        return auth_pb2.CreateApiKeyResponse(api_key=auth_pb2.ApiKey(id="key_new"))

    async def RevokeApiKey(self, request: Any, context: Any) -> auth_pb2.ApiKey:
        raise NotFound("API key", request.id)

    async def ListApiKeys(self, request: Any, context: Any) -> auth_pb2.ListApiKeysResponse:
        return auth_pb2.ListApiKeysResponse()


class ListSink:
    def __init__(self) -> None:
        self.records: list[audit_pb2.AuditRecord] = []

    def submit(self, record: audit_pb2.AuditRecord) -> None:
        self.records.append(record)

    async def recorded(self) -> list[audit_pb2.AuditRecord]:
        """The records, once there is one.

        An abort sends the status before it raises, so the caller can see a refusal
        a moment before the interceptor around the handler records it.
        """
        await assert_eventually(lambda: bool(self.records), within=5, message="no audit record")
        return self.records


@pytest.fixture(params=["separate", "chained"])
async def audited(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[auth_pb2_grpc.AuthServiceStub, ListSink]]:
    codec, sink = TEST_SIGNER, ListSink()
    links = [
        AuditInterceptor("auth", codec, sink),
        ErrorMappingInterceptor(),
        IdentityInterceptor(codec, method_scopes("farm.auth.v1.AuthService")),
    ]
    # Servers wire them as one CallChain: it must behave as the separate interceptors.
    server = grpc.aio.server(
        interceptors=links if request.param == "separate" else [CallChain(*links)]
    )
    # A partial fake: the generated base answers UNIMPLEMENTED for the RPCs it leaves out.
    auth_pb2_grpc.add_AuthServiceServicer_to_server(FakeAuth(), server)  # type: ignore[abstract]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield auth_pb2_grpc.AuthServiceStub(channel), sink
    await server.stop(0)


def caller(*scopes: str, **headers: str) -> tuple[tuple[str, str], ...]:
    token = TEST_SIGNER.encode(Identity("acme", "key_1", frozenset(scopes)))
    return ((IDENTITY_HEADER, token), *headers.items())


Audited = tuple[auth_pb2_grpc.AuthServiceStub, ListSink]


async def test_a_successful_change_is_recorded_with_who_what_and_the_created_id(
    audited: Audited,
) -> None:
    stub, sink = audited
    await stub.CreateApiKey(
        auth_pb2.CreateApiKeyRequest(name="ci"),
        metadata=caller("admin", traceparent=f"00-{TRACE}-b7ad6b7169203331-01"),
    )

    [record] = sink.records
    assert (record.tenant, record.key_id, record.rpc) == ("acme", "key_1", f"{AUTH}CreateApiKey")
    assert (record.target, record.outcome, record.trace_id) == ("key_new", "OK", TRACE)
    assert record.source == "auth" and record.id and record.time.seconds > 0


async def test_a_failed_change_is_recorded_with_its_status_and_target(audited: Audited) -> None:
    stub, sink = audited
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(id="key_9"), metadata=caller("admin"))

    [record] = await sink.recorded()
    assert (record.outcome, record.target) == ("NOT_FOUND", "key_9")
    assert "key_9" in record.message


async def test_a_successful_read_is_not_recorded(audited: Audited) -> None:
    stub, sink = audited
    await stub.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=caller("admin"))
    assert sink.records == []


async def test_a_read_without_the_scope_is_recorded_as_denied(audited: Audited) -> None:
    stub, sink = audited
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=caller("tasks.read"))

    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    [record] = await sink.recorded()
    assert (record.rpc, record.outcome, record.key_id) == (
        f"{AUTH}ListApiKeys",
        "PERMISSION_DENIED",
        "key_1",
    )


async def test_a_call_without_identity_is_recorded_as_unauthenticated(audited: Audited) -> None:
    stub, sink = audited
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=(("x-request-id", "r-1"),))

    [record] = await sink.recorded()
    assert (record.outcome, record.key_id, record.tenant, record.trace_id) == (
        "UNAUTHENTICATED",
        "",
        "",
        "r-1",
    )


async def test_a_quota_refusal_is_recorded(audited: Audited) -> None:
    stub, sink = audited
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.CreateApiKey(
            auth_pb2.CreateApiKeyRequest(name="too-many"), metadata=caller("admin")
        )
    assert [r.outcome for r in await sink.recorded()] == ["RESOURCE_EXHAUSTED"]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"traceparent": f"00-{TRACE}-b7ad6b7169203331-01", "x-request-id": "r"}, TRACE),
        ({"traceparent": "garbage", "x-request-id": "req-7"}, "req-7"),
    ],
)
def test_the_trace_id_comes_from_the_headers(headers: Mapping[str, str], expected: str) -> None:
    assert trace_id(headers) == expected


def test_a_call_without_trace_headers_gets_a_fresh_trace_id() -> None:
    first, second = trace_id({}), trace_id({})
    assert len(first) == 32 and first != second


def dropped() -> float:
    return REGISTRY.get_sample_value("farm_audit_records_total", {"outcome": "dropped"}) or 0.0


async def test_publishing_never_blocks_a_call_while_nats_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    publisher = AuditPublisher(NatsAccess(f"nats://127.0.0.1:{free_port()}"), "test", capacity=10)
    before = dropped()
    for number in range(1000):
        publisher.submit(audit_record(source="test", rpc=f"/x/{number}", outcome="OK", headers={}))
    # No await yet: each submit came back without waiting for NATS, the 990 that did
    # not fit already dropped and counted.
    assert publisher.pending == 10
    assert dropped() - before == 990
    # Closed while its sender is trying to reach NATS, as when a service stops in an outage.
    await assert_eventually(
        lambda: "NATS error" in caplog.text, message="the sender never tried NATS"
    )
    await asyncio.wait_for(publisher.close(grace_seconds=30), timeout=5)

    # The 10 queued are dropped at the stop.
    assert dropped() - before == 1000


async def test_a_service_answers_changes_at_once_with_nats_down(tmp_path: Path) -> None:
    settings = FarmSettings(
        FARM_HOME=tmp_path,
        FARM_IDENTITY_PUBLIC_KEY=TEST_PUBLIC_KEY,
        NATS_URL=f"nats://127.0.0.1:{free_port()}",
        FARM_AUDIT_QUEUE_SIZE=5,
    )
    service = StandInService(
        "silent",
        method_scopes("farm.auth.v1.AuthService"),
        # A partial fake: the generated base answers UNIMPLEMENTED for the RPCs it leaves out.
        FakeAuth(),  # type: ignore[abstract]
        auth_pb2_grpc.add_AuthServiceServicer_to_server,
        "farm.auth.v1.AuthService",
    )
    async with serving(service, settings, credentials=False) as host:
        async with grpc.aio.insecure_channel(host.address) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            started = time.perf_counter()
            for _ in range(20):
                await stub.CreateApiKey(
                    auth_pb2.CreateApiKeyRequest(name="ci"), metadata=caller("admin"), timeout=5
                )
            assert time.perf_counter() - started < 5
        assert host.audit.pending == 5


def refused(index: int, code: str) -> tasks_pb2.CreateTasksError:
    return tasks_pb2.CreateTasksError(index=index, field=f"requests[{index}]", code=code)


class FakeTasks(tasks_pb2_grpc.TaskServiceServicer):
    """Answers each CreateTasks with one task and the refusals of items 1, 3 and 4."""

    async def CreateTasks(self, request: Any, context: Any) -> tasks_pb2.CreateTasksResponse:
        return tasks_pb2.CreateTasksResponse(
            tasks=[tasks_pb2.Task(id="t_0"), tasks_pb2.Task(id="t_2")],
            errors=[
                refused(1, "PERMISSION_DENIED"),
                refused(3, "RESOURCE_EXHAUSTED"),
                refused(4, "RESOURCE_EXHAUSTED"),
            ],
        )


async def test_the_record_of_a_batch_names_each_refused_item_and_its_code() -> None:
    # It said OK and nothing more: items refused for a missing scope or a quota left no
    # trace in the log, though a lone CreateTask so refused is recorded as a refusal.
    sink = ListSink()
    chain = CallChain(
        AuditInterceptor("scheduler", TEST_SIGNER, sink),
        ErrorMappingInterceptor(),
        IdentityInterceptor(TEST_SIGNER, method_scopes("farm.tasks.v1.TaskService")),
    )
    server = grpc.aio.server(interceptors=[chain])
    # A partial fake: the generated base answers UNIMPLEMENTED for the RPCs it leaves out.
    tasks_pb2_grpc.add_TaskServiceServicer_to_server(FakeTasks(), server)  # type: ignore[abstract]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await tasks_pb2_grpc.TaskServiceStub(channel).CreateTasks(
                tasks_pb2.CreateTasksRequest(requests=[tasks_pb2.TaskSpec()] * 5),
                metadata=caller("tasks.write"),
            )
    finally:
        await server.stop(0)

    [record] = sink.records
    assert (record.rpc, record.outcome) == ("/farm.tasks.v1.TaskService/CreateTasks", "OK")
    assert record.message == (
        "2 of 5 items got a task; 3 refused (PERMISSION_DENIED 1, RESOURCE_EXHAUSTED 2): "
        "requests[1] PERMISSION_DENIED, requests[3] RESOURCE_EXHAUSTED, "
        "requests[4] RESOURCE_EXHAUSTED"
    )


def test_a_batch_cancel_is_one_record_per_id_named_once_as_cancel_task_records_one() -> None:
    request = tasks_pb2.CancelTasksRequest(ids=["t1", "t2", "nope", "t1"])
    response = tasks_pb2.CancelTasksResponse(
        tasks=[tasks_pb2.Task(id="t1"), tasks_pb2.Task(id="t2"), tasks_pb2.Task(id="t1")],
        errors=[tasks_pb2.CancelTasksError(index=2, code="NOT_FOUND", message="ids[2]: gone")],
        already_ended=["t2"],
    )

    assert cancel_items(request, response) == [
        ("t1", "OK", "cancelled (one of a batch of 4)"),
        ("t2", "OK", "had ended already (one of a batch of 4)"),
        ("nope", "NOT_FOUND", "ids[2]: gone"),
    ]
