"""The farm's Envoy configuration, run for real in front of fake services."""

import json
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from farm.storage.v1 import ingest_pb2, ingest_pb2_grpc
from farm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from farm_cli.launcher.envoy import MAX_REQUEST_BYTES
from farm_cli.main import main
from tests.helpers import assert_eventually
from tests.integration.cli.conftest import EdgeUnderTest
from tests.unit.cli.fake_auth import GOOD_KEY, IDENTITY_FOR_GOOD_KEY, OVER_LIMIT_KEY, CheckSeen
from tests.unit.cli.fake_services import PNG_BYTES

pytestmark = pytest.mark.integration

GOOD = {"authorization": f"Bearer {GOOD_KEY}"}


def get(edge: EdgeUnderTest, path: str, **options: object) -> httpx.Response:
    with httpx.Client(base_url=edge.url, timeout=10) as client:
        return client.get(path, **options)  # type: ignore[arg-type]


async def test_healthz_is_open_and_follows_the_services_health(edge: EdgeUnderTest) -> None:
    await assert_eventually(lambda: get(edge, "/healthz").status_code == 200, within=15)
    edge.fakes.set_serving(False)
    try:
        await assert_eventually(lambda: get(edge, "/healthz").status_code == 503, within=15)
        # A probe's query string is still the health check, not a path to route.
        assert get(edge, "/healthz?verbose=1").status_code == 503
    finally:
        edge.fakes.set_serving(True)
    await assert_eventually(lambda: get(edge, "/healthz").status_code == 200, within=15)
    assert get(edge, "/healthz?verbose=1").status_code == 200


def grpc_health(edge: EdgeUnderTest) -> int:
    with grpc.insecure_channel(edge.grpc_target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    return int(answer.status)


async def test_grpc_health_is_open_and_follows_the_schedulers_health(edge: EdgeUnderTest) -> None:
    serving, not_serving = (
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
    )
    await assert_eventually(lambda: grpc_health(edge) == serving, within=15)
    edge.fakes.set_serving(False)
    try:
        await assert_eventually(lambda: grpc_health(edge) == not_serving, within=15)
    finally:
        edge.fakes.set_serving(True)
    await assert_eventually(lambda: grpc_health(edge) == serving, within=15)


def test_http_json_call_is_authorized_transcoded_and_given_the_identity(
    edge: EdgeUnderTest,
) -> None:
    response = get(edge, "/v1/whoami", headers=GOOD)
    assert response.status_code == 200, response.text
    # keyId echoes the x-farm-identity header the fake auth's Check added.
    assert response.json() == {
        "tenant": "acme",
        "keyId": IDENTITY_FOR_GOOD_KEY,
        "scopes": ["admin"],
        "keyName": "",
    }


def test_zero_values_are_printed(edge: EdgeUnderTest) -> None:
    task = get(edge, "/v1/tasks/t5", headers=GOOD).json()
    assert task["id"] == "t5" and task["attempts"] == 0 and task["agentId"] == ""


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer bf_wrong"}])
def test_calls_without_a_valid_key_are_refused(
    edge: EdgeUnderTest, headers: dict[str, str]
) -> None:
    before = len(edge.fakes.calls.seen)
    response = get(edge, "/v1/tasks/t5", headers=headers)
    assert response.status_code == 401
    assert [name for name, *_ in edge.fakes.calls.seen[before:]] == ["Check"]


def checks_since(edge: EdgeUnderTest, before: int) -> list[CheckSeen]:
    return [seen for name, seen, _ in edge.fakes.calls.seen[before:] if name == "Check"]


def test_auth_hears_the_client_address_envoy_saw_never_the_clients_own(
    edge: EdgeUnderTest,
) -> None:
    before = len(edge.fakes.calls.seen)
    spoofed = {**GOOD, "x-farm-client-address": "203.0.113.9", "x-forwarded-for": "203.0.113.7"}
    assert get(edge, "/v1/tasks/t5?view=1", headers=spoofed).status_code in (200, 400)
    (seen,) = checks_since(edge, before)
    assert seen.headers["x-farm-client-address"] == "127.0.0.1"
    assert (seen.method, seen.path) == ("GET", "/check/v1/tasks/t5?view=1")


def test_auth_is_asked_with_a_json_calls_body_and_the_key_never_goes_further(
    edge: EdgeUnderTest,
) -> None:
    body = json.dumps({"url": "https://example.com", "content": {}}).encode()
    before = len(edge.fakes.calls.seen)
    with httpx.Client(base_url=edge.url, timeout=10) as client:
        created = client.post("/v1/tasks", content=body, headers=GOOD)
    assert created.status_code == 200, created.text
    (seen,) = checks_since(edge, before)
    assert seen.body == body
    _, metadata = edge.fakes.calls.last("CreateTask")
    assert metadata["x-farm-identity"] == IDENTITY_FOR_GOOD_KEY
    assert "authorization" not in metadata


def test_grpc_callers_get_the_refusals_grpc_status(edge: EdgeUnderTest) -> None:
    with grpc.insecure_channel(edge.grpc_target) as channel:
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        request = tasks_pb2.GetTaskRequest(id="t5")
        for key, code in (
            ("bf_wrong", grpc.StatusCode.UNAUTHENTICATED),
            (OVER_LIMIT_KEY, grpc.StatusCode.RESOURCE_EXHAUSTED),
        ):
            with pytest.raises(grpc.RpcError) as refused:
                tasks.GetTask(request, metadata=[("authorization", f"Bearer {key}")], timeout=10)
            assert refused.value.code() == code
        assert "over its rate limit" in refused.value.details()


def test_grpc_status_becomes_the_http_status(edge: EdgeUnderTest) -> None:
    response = get(edge, "/v1/tasks/missing", headers=GOOD)
    assert response.status_code == 404
    assert response.json()["message"] == "task missing not found"


def test_unknown_query_parameters_are_refused(edge: EdgeUnderTest) -> None:
    assert get(edge, "/v1/tasks", params={"colour": "red"}, headers=GOOD).status_code == 400
    listed = get(edge, "/v1/tasks", params={"pageSize": "2", "label": "a=b"}, headers=GOOD)
    assert listed.status_code == 200


def test_unknown_paths_are_not_found(edge: EdgeUnderTest) -> None:
    assert get(edge, "/v1/nothing", headers=GOOD).status_code == 404
    assert get(edge, "/admin", headers=GOOD).status_code == 404


def test_a_path_holding_an_encoded_nul_is_refused_with_a_message_naming_the_path(
    edge: EdgeUnderTest,
) -> None:
    refused = get(edge, "/v1/tasks/t%005", headers=GOOD)

    assert refused.status_code == 400
    assert refused.json() == {
        "code": 3,
        "message": "path: must not contain %00 (an encoded NUL byte)",
    }
    # In the query it is no path's: the call goes on to the service.
    listed = get(edge, "/v1/tasks?label=a%3Db%00", headers=GOOD)
    assert listed.status_code == 200, listed.text


def test_request_bodies_over_1_mib_are_refused(edge: EdgeUnderTest) -> None:
    body = json.dumps({"url": "https://example.com", "labels": {"x": "y" * (1024 * 1024)}})
    with httpx.Client(base_url=edge.url, timeout=10) as client:
        response = client.post("/v1/tasks", content=body, headers=GOOD)
    assert response.status_code == 413
    small = httpx.post(f"{edge.url}/v1/tasks", json={"url": "https://x"}, headers=GOOD)
    assert small.status_code == 200 and small.json()["status"] == "TASK_STATUS_QUEUED"


def test_a_grpc_request_over_1_mib_is_invalid_argument_naming_the_limit(
    edge: EdgeUnderTest,
) -> None:
    spec = tasks_pb2.TaskSpec(url="https://example.com", labels={"x": "y" * MAX_REQUEST_BYTES})
    metadata = tuple(GOOD.items())
    with grpc.insecure_channel(edge.grpc_target) as channel:
        stub = tasks_pb2_grpc.TaskServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.CreateTask(tasks_pb2.CreateTaskRequest(spec=spec), metadata=metadata, timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
        assert caught.value.details() == (
            f"request: over the edge's limit of {MAX_REQUEST_BYTES} bytes a request may carry"
        )
        # The channel serves the next call as ever.
        small = tasks_pb2.CreateTaskRequest(spec=tasks_pb2.TaskSpec(url="https://x"))
        assert stub.CreateTask(small, metadata=metadata, timeout=10).status == (
            tasks_pb2.TASK_STATUS_QUEUED
        )


def test_artifact_content_comes_back_as_the_raw_bytes(edge: EdgeUnderTest) -> None:
    response = get(edge, "/v1/artifacts/a1:content", headers=GOOD)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content == PNG_BYTES


@pytest.mark.parametrize("size", [8 * 1024 * 1024, 64 * 1024 * 1024])
def test_large_artifacts_pass_whole_over_http_and_grpc(
    edge: EdgeUnderTest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, size: int
) -> None:
    response = get(edge, f"/v1/artifacts/size-{size}:content", headers=GOOD)
    assert response.status_code == 200
    assert len(response.content) == size
    monkeypatch.setenv("FARM_URL", edge.grpc_target)
    monkeypatch.setenv("FARM_API_KEY", GOOD_KEY)
    target = tmp_path / "big.bin"
    assert main(["artifact", "get", f"size-{size}", "-o", str(target)]) == 0
    assert target.stat().st_size == size


def test_the_cli_works_through_envoy_over_grpc(
    edge: EdgeUnderTest, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FARM_URL", edge.grpc_target)
    monkeypatch.setenv("FARM_API_KEY", GOOD_KEY)
    assert main(["task", "get", "t7"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == "t7"
    assert main(["task", "watch", "t7"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    monkeypatch.setenv("FARM_API_KEY", "bf_wrong")
    assert main(["task", "get", "t7"]) == 4
    assert capsys.readouterr().err.startswith("error: UNAUTHENTICATED")


def test_the_internal_ingest_service_is_not_routed(edge: EdgeUnderTest) -> None:
    with grpc.insecure_channel(edge.grpc_target) as channel:
        stub = ingest_pb2_grpc.ArtifactIngestServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.UploadArtifact(
                iter([ingest_pb2.UploadArtifactRequest()]),
                metadata=tuple(GOOD.items()),
                timeout=10,
            )
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert all(name != "UploadArtifact" for name, *_ in edge.fakes.calls.seen)


def test_envoy_starts_without_warning_of_unlimited_downstream_connections(
    edge: EdgeUnderTest,
) -> None:
    log = edge.process.log_path.read_text(errors="replace")
    assert "downstream connections" not in log, log
