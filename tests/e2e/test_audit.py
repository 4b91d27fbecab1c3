"""The audit log through the real farm: changes and refusals, each recorded once, read back."""

import json
import secrets
import time
from typing import Any

import grpc
import httpx
import pytest

from farm.auth.v1 import auth_pb2, auth_pb2_grpc
from farm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from farm_cli.launcher.farm import LocalFarm
from tests.e2e.cli_calls import farm_command
from tests.e2e.conftest import Client, KeyFactory, http_client, new_tenant
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

TASKS = "/farm.tasks.v1.TaskService/"
AUTH = "/farm.auth.v1.AuthService/"
# A port nothing listens on: the task fails fast, wherever it runs.
NOWHERE = "http://127.0.0.1:9/"


def traced() -> tuple[str, dict[str, str]]:
    """A fresh trace id and the traceparent header carrying it."""
    trace = secrets.token_hex(16)
    return trace, {"traceparent": f"00-{trace}-{secrets.token_hex(8)}-01"}


def audited(admin: Client, trace: str, *, within: float = 15.0, **query: str) -> list[Any]:
    """The audit records of trace `trace` (read by the bootstrap admin), once there are some.

    Reads them again a moment after the first one shows, so a second record would be seen.
    """

    def records() -> list[Any]:
        response = admin.http.get("/v1/auditRecords", params={"pageSize": 1000, **query})
        assert response.status_code == 200, response.text
        return [r for r in response.json()["auditRecords"] if r["traceId"] == trace]

    eventually(records, within=within, interval=0.1, message=f"no audit record of trace {trace}")
    # Showing that a record is there once means waiting: a duplicate, were there one,
    # would be written with the first (records show up within about a second).
    time.sleep(0.5)
    return records()


@pytest.fixture(scope="module")
def tenant() -> str:
    return new_tenant("audit")


@pytest.fixture(scope="module")
def writer(make_key: KeyFactory, tenant: str) -> auth_pb2.CreateApiKeyResponse:
    return make_key("tasks.write", "tasks.read", tenant=tenant)


def post_traced(
    farm: LocalFarm, key: str, path: str, body: dict[str, Any] | None = None
) -> tuple[str, httpx.Response]:
    """POSTs `body` to `path` with `key` under a fresh trace; the trace id and the answer."""
    trace, headers = traced()
    with http_client(farm, key) as http:
        return trace, http.post(path, json=body, headers=headers)


def create_task(farm: LocalFarm, key: str) -> tuple[str, dict[str, Any]]:
    """Creates a task that fails fast, under a fresh trace; the trace id and the task."""
    trace, response = post_traced(
        farm, key, "/v1/tasks", {"url": NOWHERE, "content": {}, "maxAttempts": 1}
    )
    assert response.status_code == 200, response.text
    return trace, dict(response.json())


def test_a_created_task_is_recorded_once_with_its_id(
    farm: LocalFarm, admin: Client, writer: auth_pb2.CreateApiKeyResponse, tenant: str
) -> None:
    trace, task = create_task(farm, writer.secret)

    [record] = audited(admin, trace, tenant=tenant, rpc="CreateTask")
    assert record["rpc"] == f"{TASKS}CreateTask"
    assert (record["tenant"], record["keyId"]) == (tenant, writer.api_key.id)
    assert (record["target"], record["outcome"], record["source"]) == (
        task["id"],
        "OK",
        "scheduler",
    )


def test_a_cancel_is_recorded_once_with_the_task_id(
    farm: LocalFarm, admin: Client, writer: auth_pb2.CreateApiKeyResponse, tenant: str
) -> None:
    _, task = create_task(farm, writer.secret)
    trace, cancelled = post_traced(farm, writer.secret, f"/v1/tasks/{task['id']}:cancel")
    assert cancelled.status_code == 200

    [record] = audited(admin, trace, rpc=f"{TASKS}CancelTask")
    assert (record["tenant"], record["keyId"], record["target"], record["outcome"]) == (
        tenant,
        writer.api_key.id,
        task["id"],
        "OK",
    )


def test_a_key_creation_is_recorded_once_with_the_new_keys_id(
    farm: LocalFarm, admin: Client, channel: grpc.Channel, tenant: str
) -> None:
    trace, headers = traced()
    stub = auth_pb2_grpc.AuthServiceStub(channel)
    created = stub.CreateApiKey(
        auth_pb2.CreateApiKeyRequest(name="audited", scopes=["tasks.read"], tenant=tenant),
        metadata=(("authorization", f"Bearer {farm.admin_key}"), *headers.items()),
        timeout=10,
    )
    admin_key_id = admin.http.get("/v1/whoami").json()["keyId"]

    [record] = audited(admin, trace, rpc="CreateApiKey")
    assert (record["rpc"], record["target"], record["outcome"]) == (
        f"{AUTH}CreateApiKey",
        created.api_key.id,
        "OK",
    )
    assert (record["tenant"], record["keyId"], record["source"]) == (
        "default",
        admin_key_id,
        "auth",
    )


def test_a_call_without_a_key_is_recorded_at_the_edge(farm: LocalFarm, admin: Client) -> None:
    trace, headers = traced()
    with http_client(farm, None) as http:
        assert http.get("/v1/tasks", headers=headers).status_code == 401

    [record] = audited(admin, trace, outcome="UNAUTHENTICATED")
    assert (record["rpc"], record["source"], record["tenant"], record["keyId"]) == (
        "GET /v1/tasks",
        "edge",
        "",
        "",
    )
    assert "missing API key" in record["message"]


def test_a_call_without_the_scope_is_recorded_as_denied(
    farm: LocalFarm, admin: Client, make_key: KeyFactory, tenant: str
) -> None:
    reader = make_key("tasks.read", tenant=tenant)
    trace, response = post_traced(farm, reader.secret, "/v1/tasks", {"url": NOWHERE, "content": {}})
    assert response.status_code == 403

    [record] = audited(admin, trace, outcome="PERMISSION_DENIED")
    assert (record["rpc"], record["tenant"], record["keyId"], record["target"]) == (
        f"{TASKS}CreateTask",
        tenant,
        reader.api_key.id,
        "",
    )
    assert "tasks.write" in record["message"]


def test_a_denied_call_whose_text_holds_a_nul_is_recorded_with_it_replaced(
    channel: grpc.Channel, admin: Client, make_key: KeyFactory, tenant: str
) -> None:
    # A NUL in the call's own text (here the task id), which PostgreSQL cannot store:
    # the record must still be stored, and not hold up the records batched with it.
    reader = make_key("tasks.read", tenant=tenant)
    trace, headers = traced()
    metadata = (("authorization", f"Bearer {reader.secret}"), *headers.items())

    with pytest.raises(grpc.RpcError) as caught:
        tasks_pb2_grpc.TaskServiceStub(channel).CancelTask(
            tasks_pb2.CancelTaskRequest(id="before\x00after"), metadata=metadata, timeout=10
        )

    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    [record] = audited(admin, trace, outcome="PERMISSION_DENIED")
    assert (record["rpc"], record["target"]) == (f"{TASKS}CancelTask", "before\ufffdafter")


def test_a_key_for_another_tenant_is_recorded_as_denied(
    farm: LocalFarm, admin: Client, make_key: KeyFactory, tenant: str
) -> None:
    tenant_admin = make_key("admin", tenant=tenant)
    sneaky = {"name": "sneaky", "scopes": ["admin"], "tenant": "default"}
    trace, response = post_traced(farm, tenant_admin.secret, "/v1/apiKeys", sneaky)
    assert response.status_code == 403

    [record] = audited(admin, trace, rpc="CreateApiKey", outcome="PERMISSION_DENIED")
    assert (record["tenant"], record["keyId"]) == (tenant, tenant_admin.api_key.id)


def test_a_tenant_admin_reads_only_its_tenants_records(
    farm: LocalFarm,
    admin: Client,
    make_key: KeyFactory,
    writer: auth_pb2.CreateApiKeyResponse,
    tenant: str,
) -> None:
    trace, _ = create_task(farm, writer.secret)
    audited(admin, trace, tenant=tenant)
    tenant_admin = make_key("admin", tenant=tenant)
    with http_client(farm, tenant_admin.secret) as http:
        listed = http.get("/v1/auditRecords", params={"pageSize": 1000}).json()["auditRecords"]
        other = http.get("/v1/auditRecords", params={"tenant": "default"})
    with http_client(farm, writer.secret) as http:
        not_admin = http.get("/v1/auditRecords")

    assert listed and {r["tenant"] for r in listed} == {tenant}
    assert other.status_code == 403 and other.json()["message"].startswith("tenant:")
    assert not_admin.status_code == 403


def test_the_cli_prints_the_records(
    farm: LocalFarm, admin: Client, writer: auth_pb2.CreateApiKeyResponse, tenant: str
) -> None:
    trace, task = create_task(farm, writer.secret)
    audited(admin, trace, tenant=tenant, rpc="CreateTask")

    printed = farm_command(
        farm,
        "audit",
        "--tenant",
        tenant,
        "--rpc",
        "CreateTask",
        "--outcome",
        "ok",
        "--since",
        "10m",
        "--limit",
        "1",
    )

    assert printed.returncode == 0, printed.stderr
    [record] = json.loads(printed.stdout)["auditRecords"]
    assert (record["target"], record["traceId"], record["keyId"]) == (
        task["id"],
        trace,
        writer.api_key.id,
    )


def test_paging_follows_the_token(
    farm: LocalFarm, admin: Client, writer: auth_pb2.CreateApiKeyResponse, tenant: str
) -> None:
    for _ in range(2):
        trace, _ = create_task(farm, writer.secret)
        audited(admin, trace, tenant=tenant)
    first = admin.http.get("/v1/auditRecords", params={"tenant": tenant, "pageSize": 1}).json()
    assert len(first["auditRecords"]) == 1 and first["nextPageToken"]
    second = admin.http.get(
        "/v1/auditRecords",
        params={"tenant": tenant, "pageSize": 1, "pageToken": first["nextPageToken"]},
    ).json()
    assert second["auditRecords"][0]["id"] != first["auditRecords"][0]["id"]


def test_an_unknown_outcome_filter_names_the_field(admin: Client) -> None:
    response = admin.http.get("/v1/auditRecords", params={"outcome": "NOPE"})
    assert response.status_code == 400 and response.json()["message"].startswith("outcome:")
