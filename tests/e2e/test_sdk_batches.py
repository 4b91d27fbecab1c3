"""create_tasks of more specs than one CreateTasks call takes, against the whole farm.

The SDK reaches Envoy through a gRPC relay of the test's that loses the farm's answer
to the second call once: the farm has queued that call's tasks, the SDK sees
UNAVAILABLE and makes the call again.
"""

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Literal

import grpc
import pytest

import browserfarm
from farm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from farm_cli.launcher.farm import LocalFarm
from farm_core.free_ports import free_port
from tests.e2e.conftest import Client, KeyFactory, new_tenant, unique_label
from tests.e2e.operator_http import set_rate
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]

# A region no agent serves: the tasks stay queued until the test cancels them.
NOWHERE = "sdk-batch-nowhere"
# More than one call's 1,000, so the second call is a short one.
SPECS = 1200
# The key's rate must let the cleanup's cancels through, one a task, at once.
RATE = SPECS + 100


class AnswerLosingRelay(tasks_pb2_grpc.TaskServiceServicer):
    """CreateTasks passed on to Envoy; the farm's answer to the second call is lost, once."""

    def __init__(self, upstream: grpc.aio.Channel) -> None:
        self.upstream = tasks_pb2_grpc.TaskServiceStub(upstream)
        self.calls: list[tasks_pb2.CreateTasksRequest] = []

    async def CreateTasks(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.calls.append(request)
        key = [(k, v) for k, v in context.invocation_metadata() or () if k == "authorization"]
        reply = await self.upstream.CreateTasks(request, metadata=key, timeout=60)
        if len(self.calls) == 2:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the relay lost the answer")
        return reply


@pytest.fixture
async def relay(farm: LocalFarm) -> AsyncIterator[tuple[str, AnswerLosingRelay]]:
    """The relay's URL, and the relay."""
    async with grpc.aio.insecure_channel(farm.envoy_url.removeprefix("http://")) as channel:
        # A partial relay: the generated base answers UNIMPLEMENTED for the RPCs it leaves out.
        relaying = AnswerLosingRelay(channel)  # type: ignore[abstract]
        server = grpc.aio.server()
        tasks_pb2_grpc.add_TaskServiceServicer_to_server(relaying, server)
        port = free_port()
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        try:
            yield f"http://127.0.0.1:{port}", relaying
        finally:
            await server.stop(grace=None)


async def test_1200_specs_are_queued_once_each_in_order_though_a_call_is_made_again(
    farm: LocalFarm,
    admin: Client,
    make_key: KeyFactory,
    relay: tuple[str, AnswerLosingRelay],
    site: Site,
) -> None:
    writer = make_key("tasks.write", "tasks.read", tenant=new_tenant("sdk-batch"))
    set_rate(admin, writer.api_key.id, per_second=RATE, burst=RATE)
    labels = unique_label()
    page = site.url("/page")
    specs = [
        {"url": page, "content": {}, "region": NOWHERE, "labels": {**labels, "n": str(n)}}
        for n in range(SPECS)
    ]
    url, relaying = relay
    async with (
        browserfarm.AsyncClient(url, writer.secret, backoff_seconds=0.01) as through_relay,
        browserfarm.AsyncClient(farm.envoy_url, writer.secret) as direct,
    ):
        items = await through_relay.create_tasks(specs)
        made = [item.task.id for item in items if item.task is not None]
        try:
            assert [len(call.requests) for call in relaying.calls] == [1000, 200, 200]
            assert relaying.calls[1] == relaying.calls[2]
            assert [item.index for item in items] == list(range(SPECS))
            assert [item.error for item in items if not item.ok] == []
            assert [item.task.proto.spec.labels["n"] for item in items if item.task] == [
                str(n) for n in range(SPECS)
            ]
            assert len(set(made)) == SPECS
            listed = [task.id async for task in direct.list_tasks(labels=labels, page_size=1000)]
            assert sorted(listed) == sorted(made)
        finally:
            await asyncio.gather(*(direct.cancel(task_id) for task_id in made))


@pytest.mark.parametrize("transport", ["grpc", "http"])
async def test_cancel_tasks_cancels_more_than_one_calls_1000_with_an_item_per_id_in_order(
    farm: LocalFarm,
    admin: Client,
    make_key: KeyFactory,
    site: Site,
    transport: Literal["grpc", "http"],
) -> None:
    writer = make_key("tasks.write", "tasks.read", tenant=new_tenant("sdk-cancel"))
    others = admin.create({"url": site.url("/page"), "content": {}, "region": NOWHERE})
    spec = {"url": site.url("/page"), "content": {}, "region": NOWHERE, "labels": unique_label()}
    async with browserfarm.AsyncClient(
        farm.envoy_url, writer.secret, transport=transport
    ) as client:
        made = [item.task for item in await client.create_tasks([spec] * 1001) if item.task]
        await client.cancel(made[5])
        # 1,001 of the tenant's, then another tenant's: two calls, the second of two ids.
        items = await client.cancel_tasks([*made, others["id"]])

    assert [item.index for item in items] == list(range(1002))
    assert [item.task_id for item in items] == [*(task.id for task in made), others["id"]]
    assert all(item.task is not None for item in items[:1001])
    assert {item.task.status for item in items[:1001] if item.task} == {
        browserfarm.TaskStatus.CANCELLED
    }
    assert [item.index for item in items if item.already_ended] == [5]
    last = items[-1]
    assert last.task is None and last.error is not None
    assert (last.error.field, last.error.code) == ("ids[1]", "NOT_FOUND")
    assert admin.get(others["id"])["status"] == "TASK_STATUS_QUEUED"
    admin.http.post(f"/v1/tasks/{others['id']}:cancel")
