"""Who may do what at the edge: keys, scopes, expiry, revocation, tenants."""

import base64
import json

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from farm.admin.v1 import admin_pb2
from farm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from farm_cli.launcher.farm import LocalFarm
from farm_core.identity import IDENTITY_HEADER, Identity, IdentitySigner
from farm_core.identity_keys import new_private_key, private_pem
from tests.e2e.conftest import Client, KeyFactory, http_client, refusal
from tests.helpers import eventually
from tests.pages import Site

pytestmark = pytest.mark.e2e


def test_health_is_open_without_a_key(farm: LocalFarm) -> None:
    assert httpx.get(f"{farm.envoy_url}/healthz", timeout=10).status_code == 200


def test_grpc_health_check_is_open_without_a_key(channel: grpc.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)

    answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    watched = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
    first = next(watched)
    watched.cancel()

    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    assert first.status == health_pb2.HealthCheckResponse.SERVING


def test_grpc_health_of_an_unknown_service_is_not_found(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="farm.nothing.v1.NothingService"), timeout=10
        )

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "method",
    [
        "/farm.admin.v1.AdminService/ListAgents",
        # Envoy normalizes the path before it picks the route: this is ListAgents.
        "/grpc.health.v1.Health/../farm.admin.v1.AdminService/ListAgents",
        "/grpc.health.v1.HealthX/../../farm.admin.v1.AdminService/ListAgents",
    ],
)
def test_methods_beside_grpc_health_still_need_a_key(channel: grpc.Channel, method: str) -> None:
    call = channel.unary_unary(
        method,
        request_serializer=admin_pb2.ListAgentsRequest.SerializeToString,
        response_deserializer=admin_pb2.ListAgentsResponse.FromString,
    )
    with pytest.raises(grpc.RpcError) as caught:
        call(admin_pb2.ListAgentsRequest(), timeout=10)

    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_service_named_like_grpc_health_reaches_nothing(channel: grpc.Channel) -> None:
    call = channel.unary_unary(
        "/grpc.health.v1.HealthX/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    with pytest.raises(grpc.RpcError) as caught:
        call(health_pb2.HealthCheckRequest(), timeout=10)

    # No route: Envoy answers itself (a service's answer would carry the time it took).
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    answer_metadata = [*caught.value.initial_metadata(), *caught.value.trailing_metadata()]
    assert "x-envoy-upstream-service-time" not in dict(answer_metadata)


def test_a_call_without_a_key_is_401(farm: LocalFarm) -> None:
    with http_client(farm, None) as http:
        response = http.get("/v1/tasks")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "missing API key" in response.json()["message"]


def test_an_unknown_key_is_401(farm: LocalFarm) -> None:
    with http_client(farm, "bf_not-a-real-key") as http:
        response = http.post("/v1/tasks", json={"url": "http://x.test", "content": {}})

    assert response.status_code == 401
    assert response.json()["message"] == "unknown API key"


def test_a_grpc_call_without_a_key_is_unauthenticated(grpc_target: str) -> None:
    with grpc.insecure_channel(grpc_target) as channel:
        stub = tasks_pb2_grpc.TaskServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ListTasks(tasks_pb2.ListTasksRequest(), timeout=10)

    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "missing API key" in (caught.value.details() or "")


def test_a_forged_identity_header_does_not_get_in(farm: LocalFarm) -> None:
    forged = IdentitySigner(private_pem(new_private_key())).encode(
        Identity("default", "key_forged", frozenset({"admin", "tasks.read"}))
    )
    with httpx.Client(base_url=farm.envoy_url, timeout=10) as http:
        response = http.get("/v1/tasks", headers={IDENTITY_HEADER: forged})

    assert response.status_code == 401


def test_a_revoked_key_stops_working_within_seconds(
    farm: LocalFarm, admin: Client, make_key: KeyFactory
) -> None:
    key = make_key("tasks.read")
    with http_client(farm, key.secret) as http:
        assert http.get("/v1/tasks").status_code == 200

        assert admin.http.delete(f"/v1/apiKeys/{key.api_key.id}").status_code == 200

        response = eventually(
            lambda: refusal(http), within=3, interval=0.1, message="revoked key still accepted"
        )
    assert response.status_code == 401
    assert response.json()["message"] == "API key revoked"


def test_an_expired_key_is_401(farm: LocalFarm, make_key: KeyFactory) -> None:
    key = make_key("tasks.read", ttl_seconds=1)
    with http_client(farm, key.secret) as http:
        response = eventually(
            lambda: refusal(http), within=5, interval=0.2, message="expired key still accepted"
        )

    assert response.status_code == 401
    assert response.json()["message"] == "API key expired"


def test_a_key_without_the_scope_is_403(farm: LocalFarm, make_key: KeyFactory) -> None:
    key = make_key("tasks.read")
    with http_client(farm, key.secret) as http:
        response = http.post("/v1/tasks", json={"url": "http://x.test", "content": {}})

    assert response.status_code == 403
    assert "'tasks.write'" in response.json()["message"]


def test_reading_artifacts_needs_its_own_scope(
    farm: LocalFarm, admin: Client, make_key: KeyFactory, site: Site
) -> None:
    task = admin.run({"url": site.url("/page"), "screenshot": {}})
    artifact_id = task["result"]["artifacts"][0]["id"]
    key = make_key("tasks.read")

    with http_client(farm, key.secret) as http:
        assert http.get(f"/v1/tasks/{task['id']}").status_code == 200
        assert http.get(f"/v1/artifacts/{artifact_id}:content").status_code == 403


def test_a_script_needs_the_script_scope(farm: LocalFarm, make_key: KeyFactory) -> None:
    key = make_key("tasks.write", "tasks.read")
    with http_client(farm, key.secret) as http:
        response = http.post(
            "/v1/tasks", json={"url": "http://x.test", "script": {"source": "() => 1"}}
        )

    assert response.status_code == 403
    assert "script" in response.json()["message"]


def test_another_tenant_sees_none_of_this_tenants_objects(
    farm: LocalFarm, admin: Client, make_key: KeyFactory, site: Site
) -> None:
    task = admin.run({"url": site.url("/page"), "screenshot": {}})
    artifact_id = task["result"]["artifacts"][0]["id"]
    other = make_key("tasks.read", "tasks.write", "artifacts.read", "admin", tenant="other-team")

    with http_client(farm, other.secret) as http:
        assert http.get("/v1/whoami").json()["tenant"] == "other-team"
        assert http.get(f"/v1/tasks/{task['id']}").status_code == 404
        assert http.post(f"/v1/tasks/{task['id']}:cancel").status_code == 404
        assert http.get(f"/v1/artifacts/{artifact_id}").status_code == 404
        assert http.get(f"/v1/artifacts/{artifact_id}:content").status_code == 404
        listed = http.get("/v1/tasks", params={"pageSize": 1000}).json()["tasks"]
        assert task["id"] not in {listed_task["id"] for listed_task in listed}
        keys = http.get("/v1/apiKeys").json()["apiKeys"]
        assert {key["tenant"] for key in keys} == {"other-team"}


@pytest.mark.parametrize(
    "path",
    [
        "/v1/tasks",
        "/v1/sessions",
        "/v1/artifacts",
        "/v1/baselines",
        "/v1/profiles",
        "/v1/deadLetters",
        "/v1/auditRecords",
    ],
)
def test_a_forged_page_token_is_400_on_every_list(
    farm: LocalFarm, make_key: KeyFactory, path: str
) -> None:
    # A token is the caller's to send back; a time the database cannot take was a 500.
    key = make_key("tasks.read", "sessions", "artifacts.read", "admin")
    forged = json.dumps({"t": "0001-01-01T00:00:00", "id": ""}).encode()
    token = base64.urlsafe_b64encode(forged).decode().rstrip("=")
    with http_client(farm, key.secret) as http:
        response = http.get(path, params={"pageToken": token})

    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith("pageToken:")


def test_a_tenant_admin_cannot_make_keys_for_another_tenant(
    farm: LocalFarm, make_key: KeyFactory
) -> None:
    other = make_key("admin", tenant="other-team")
    with http_client(farm, other.secret) as http:
        response = http.post(
            "/v1/apiKeys", json={"name": "sneaky", "scopes": ["admin"], "tenant": "default"}
        )

    assert response.status_code == 403
    assert response.json()["message"].startswith("tenant:")


def test_a_key_create_repeated_over_http_is_409_naming_the_first_key(
    farm: LocalFarm, make_key: KeyFactory
) -> None:
    tenant_admin = make_key("admin", tenant="idempotent-keys")
    body = {"name": "nightly", "scopes": ["tasks.read"], "idempotencyKey": "nightly-1"}
    with http_client(farm, tenant_admin.secret) as http:
        first = http.post("/v1/apiKeys", json=body)
        again = http.post("/v1/apiKeys", json=body)
        changed = http.post("/v1/apiKeys", json={**body, "name": "weekly"})
        listed = http.get("/v1/apiKeys").json()["apiKeys"]

    assert first.status_code == 200, first.text
    key_id = first.json()["apiKey"]["id"]
    assert again.status_code == 409, again.text
    assert key_id in again.json()["message"]
    assert "secret" not in again.json()
    assert changed.status_code == 400, changed.text
    assert changed.json()["message"].startswith("idempotencyKey: 'nightly-1' was used by API key")
    assert [key["id"] for key in listed if key["name"] in ("nightly", "weekly")] == [key_id]
