"""CancelTasks through Envoy: 1,000 tasks cancelled in one call, over HTTP/JSON and gRPC."""

import time
from typing import Any

import grpc
import pytest

from farm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import Client, KeyFactory, http_client, new_tenant, unique_label
from tests.e2e.operator_http import audit_records
from tests.pages import Site

pytestmark = pytest.mark.e2e

# No agent serves this region: the tasks stay queued until cancelled.
NOWHERE = "batch-cancel-nowhere"
UNKNOWN_ID = "0" * 32
FULL_BATCH = 1000


def queued_batch(http: Any, site: Site, count: int, labels: dict[str, str]) -> list[str]:
    """The ids of `count` tasks queued with one batchCreate, waiting where no agent serves."""
    spec = {"url": site.url("/page"), "content": {}, "region": NOWHERE, "labels": labels}
    response = http.post("/v1/tasks:batchCreate", json={"requests": [spec] * count})
    assert response.status_code == 200, response.text
    assert response.json()["errors"] == []
    return [task["id"] for task in response.json()["tasks"]]


def test_a_full_batch_of_1000_is_cancelled_in_one_http_call_and_another_tenants_task_is_not(
    farm: LocalFarm, admin: Client, make_key: KeyFactory, site: Site
) -> None:
    key = make_key("tasks.write", "tasks.read", tenant=new_tenant("batch-cancel"))
    others = admin.create({"url": site.url("/page"), "content": {}, "region": NOWHERE})
    with http_client(farm, key.secret) as http:
        ids = queued_batch(http, site, FULL_BATCH - 2, unique_label())
        ended = http.post(f"/v1/tasks/{ids[0]}:cancel")
        assert ended.status_code == 200, ended.text
        # The batch: 998 of the tenant's (one already cancelled), an unknown id and
        # another tenant's queued task.
        batch = [*ids, UNKNOWN_ID, others["id"]]

        started = time.monotonic()
        response = http.post("/v1/tasks:batchCancel", json={"ids": batch})
        took = time.monotonic() - started
        again = http.post("/v1/tasks:batchCancel", json={"ids": ids[:3]})

    print(f"CancelTasks of {len(batch)} ids through Envoy: {took:.2f} s")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [task["id"] for task in answer["tasks"]] == ids
    assert {task["status"] for task in answer["tasks"]} == {"TASK_STATUS_CANCELLED"}
    assert answer["alreadyEnded"] == [ids[0]]
    assert answer["errors"] == [
        {
            "index": len(ids),
            "field": f"ids[{len(ids)}]",
            "code": "NOT_FOUND",
            "message": f"ids[{len(ids)}]: task '{UNKNOWN_ID}' not found",
        },
        {
            "index": len(ids) + 1,
            "field": f"ids[{len(ids) + 1}]",
            "code": "NOT_FOUND",  # another tenant's, as CancelTask answers it
            "message": f"ids[{len(ids) + 1}]: task '{others['id']}' not found",
        },
    ]
    assert admin.get(others["id"])["status"] == "TASK_STATUS_QUEUED"
    admin.http.post(f"/v1/tasks/{others['id']}:cancel")
    # Sent again, the batch changes nothing and says so.
    assert again.status_code == 200, again.text
    assert again.json()["alreadyEnded"] == ids[:3]


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ([], "ids: is required: 1 to 1000 task ids"),
        ([UNKNOWN_ID] * 1001, "ids: holds 1001 task ids, at most 1000 are allowed in one call"),
    ],
    ids=["empty", "over-1000"],
)
def test_an_empty_or_too_long_batch_is_a_400_naming_ids(
    admin: Client, ids: list[str], message: str
) -> None:
    response = admin.http.post("/v1/tasks:batchCancel", json={"ids": ids})

    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith(message)


def test_over_grpc_a_batch_cancel_needs_tasks_write_and_is_audited_per_task(
    admin: Client, make_key: KeyFactory, site: Site, channel: grpc.Channel
) -> None:
    tenant = new_tenant("batch-cancel-grpc")
    writer = make_key("tasks.write", tenant=tenant)
    reader = make_key("tasks.read", tenant=tenant)
    stub = tasks_pb2_grpc.TaskServiceStub(channel)
    with http_client_of(admin, writer.secret) as http:
        ids = queued_batch(http, site, 3, unique_label())
    request = tasks_pb2.CancelTasksRequest(ids=[*ids, UNKNOWN_ID])
    trace = f"{time.time_ns():032x}"[-32:]
    traceparent = f"00-{trace}-{'1' * 16}-01"

    with pytest.raises(grpc.RpcError) as refused:
        stub.CancelTasks(request, metadata=bearer(reader.secret), timeout=30)
    answer = stub.CancelTasks(
        request, metadata=(*bearer(writer.secret), ("traceparent", traceparent)), timeout=30
    )

    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert [task.id for task in answer.tasks] == ids
    assert [(error.index, error.code) for error in answer.errors] == [(3, "NOT_FOUND")]
    records = audit_records(admin, trace, "OK", tenant)
    assert {record["rpc"] for record in records} == {"/farm.tasks.v1.TaskService/CancelTasks"}
    assert sorted(record["target"] for record in records) == sorted(ids)
    assert {record["tenant"] for record in records} == {tenant}
    assert all(record["message"] == "cancelled (one of a batch of 4)" for record in records)
    (missing,) = audit_records(admin, trace, "NOT_FOUND", tenant)
    assert missing["target"] == UNKNOWN_ID


def bearer(secret: str) -> tuple[tuple[str, str], ...]:
    """gRPC metadata carrying `secret` as the API key."""
    return (("authorization", f"Bearer {secret}"),)


def http_client_of(admin: Client, secret: str) -> Any:
    """An HTTP client to the same Envoy as `admin`'s, with `secret` as its key."""
    return type(admin.http)(
        base_url=admin.http.base_url, headers={"authorization": f"Bearer {secret}"}, timeout=120
    )
