"""The same farm through generated gRPC stubs, and through grpcurl and buf curl."""

import json
import subprocess
from pathlib import Path

import grpc
import pytest

from farm.storage.v1 import artifacts_pb2, artifacts_pb2_grpc
from farm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from farm_cli.launcher.farm import LocalFarm
from farm_core.public_api import PUBLIC_SERVICES
from tests.e2e.conftest import ROOT, png_size
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]

GRPCURL = str(ROOT / ".venv" / "bin" / "grpcurl")
BUF = str(ROOT / ".venv" / "bin" / "buf")
IMPORT_PATHS = [
    "-import-path",
    str(ROOT / "protos"),
    "-import-path",
    str(ROOT / "build" / "proto-deps"),
]


def bearer(farm: LocalFarm) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {farm.admin_key}"),)


def test_stubs_run_a_screenshot_and_fetch_its_bytes(
    farm: LocalFarm, channel: grpc.Channel, site: Site
) -> None:
    spec = tasks_pb2.TaskSpec(
        url=site.url("/page"),
        screenshot=tasks_pb2.ScreenshotOptions(),
        viewport=tasks_pb2.Viewport(width=500, height=400),
    )
    task = tasks_pb2_grpc.TaskServiceStub(channel).RunTask(
        tasks_pb2.RunTaskRequest(spec=spec), metadata=bearer(farm), timeout=120
    )

    assert task.status == tasks_pb2.TASK_STATUS_SUCCEEDED, task.error
    body = artifacts_pb2_grpc.ArtifactServiceStub(channel).GetArtifactContent(
        artifacts_pb2.GetArtifactContentRequest(id=task.result.artifacts[0].id),
        metadata=bearer(farm),
        timeout=30,
    )
    assert body.content_type == "image/png"
    assert png_size(body.data) == (500, 400)


def test_stubs_watch_a_task_to_its_end(farm: LocalFarm, channel: grpc.Channel, site: Site) -> None:
    stub = tasks_pb2_grpc.TaskServiceStub(channel)
    spec = tasks_pb2.TaskSpec(url=site.url("/page"), content=tasks_pb2.ContentOptions())
    task = stub.CreateTask(tasks_pb2.CreateTaskRequest(spec=spec), metadata=bearer(farm))

    events = list(
        stub.WatchTask(tasks_pb2.WatchTaskRequest(id=task.id), metadata=bearer(farm), timeout=60)
    )

    assert events[-1].status == tasks_pb2.TASK_STATUS_SUCCEEDED
    assert events[-1].task.result.title == "Test page"


def test_stubs_get_invalid_argument_naming_the_field(
    farm: LocalFarm, channel: grpc.Channel
) -> None:
    spec = tasks_pb2.TaskSpec(url="gopher://example.com", content=tasks_pb2.ContentOptions())
    with pytest.raises(grpc.RpcError) as caught:
        tasks_pb2_grpc.TaskServiceStub(channel).CreateTask(
            tasks_pb2.CreateTaskRequest(spec=spec), metadata=bearer(farm), timeout=10
        )

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith("url:")


def test_stubs_get_invalid_argument_for_a_host_with_an_empty_label_in_one_or_many(
    farm: LocalFarm, channel: grpc.Channel
) -> None:
    stub = tasks_pb2_grpc.TaskServiceStub(channel)
    spec = tasks_pb2.TaskSpec(url="http://a..b/", content=tasks_pb2.ContentOptions())
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateTask(tasks_pb2.CreateTaskRequest(spec=spec), metadata=bearer(farm), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "url: host 'a..b' has an empty label"

    batch = stub.CreateTasks(
        tasks_pb2.CreateTasksRequest(requests=[spec]),
        metadata=bearer(farm),
        timeout=10,
    )
    assert [(error.code, error.field, error.message) for error in batch.errors] == [
        ("INVALID_ARGUMENT", "requests[0].url", "requests[0].url: host 'a..b' has an empty label")
    ]


def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GRPCURL, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_grpcurl_runs_a_task_with_the_protos(farm: LocalFarm, site: Site, tmp_path: Path) -> None:
    target = farm.envoy_url.removeprefix("http://")
    request = json.dumps({"spec": {"url": site.url("/page"), "pdf": {}}})

    ran = grpcurl(
        "-plaintext",
        *IMPORT_PATHS,
        "-proto",
        "farm/tasks/v1/tasks.proto",
        "-H",
        f"authorization: Bearer {farm.admin_key}",
        "-max-time",
        "120",
        "-d",
        request,
        target,
        "farm.tasks.v1.TaskService/RunTask",
    )

    assert ran.returncode == 0, ran.stderr
    task = json.loads(ran.stdout)
    assert task["status"] == "TASK_STATUS_SUCCEEDED"
    assert task["result"]["artifacts"][0]["contentType"] == "application/pdf"


def test_grpcurl_without_a_key_is_refused(farm: LocalFarm) -> None:
    target = farm.envoy_url.removeprefix("http://")

    ran = grpcurl(
        "-plaintext",
        *IMPORT_PATHS,
        "-proto",
        "farm/auth/v1/auth.proto",
        target,
        "farm.auth.v1.AuthService/WhoAmI",
    )

    assert ran.returncode != 0
    assert "Unauthenticated" in ran.stderr


def test_grpcurl_lists_a_services_api_by_reflection(farm: LocalFarm) -> None:
    listed = grpcurl("-plaintext", f"127.0.0.1:{farm.config.ports.scheduler}", "list")

    assert listed.returncode == 0, listed.stderr
    services = set(listed.stdout.split())
    assert "farm.tasks.v1.TaskService" in services
    assert "grpc.health.v1.Health" in services


def edge(farm: LocalFarm) -> str:
    return farm.envoy_url.removeprefix("http://")


def with_key(farm: LocalFarm) -> list[str]:
    return ["-plaintext", "-H", f"authorization: Bearer {farm.admin_key}"]


def test_grpcurl_lists_the_whole_public_api_at_the_edge(farm: LocalFarm) -> None:
    listed = grpcurl(*with_key(farm), edge(farm), "list")

    assert listed.returncode == 0, listed.stderr
    services = set(listed.stdout.split())
    assert services >= set(PUBLIC_SERVICES)
    assert "farm.storage.v1.ArtifactIngestService" not in services


def test_grpcurl_describes_a_method_and_a_message_at_the_edge(farm: LocalFarm) -> None:
    method = grpcurl(*with_key(farm), edge(farm), "describe", "farm.storage.v1.ArtifactService")
    message = grpcurl(*with_key(farm), edge(farm), "describe", "farm.tasks.v1.TaskSpec")

    assert method.returncode == 0, method.stderr
    assert "rpc GetArtifactContent" in method.stdout
    assert message.returncode == 0, message.stderr
    assert "screenshot" in message.stdout


@pytest.mark.parametrize(
    "symbol",
    [
        "farm.storage.v1.ArtifactIngestService",
        "farm.auth.v1.IdentityRenewalService",
        "farm.queue.v1.WorkItem",
        "farm.queue.v1.SessionRoute",
    ],
)
def test_reflection_at_the_edge_describes_nothing_internal(farm: LocalFarm, symbol: str) -> None:
    """Before, the scheduler answered reflection from every proto it had imported."""
    described = grpcurl(*with_key(farm), edge(farm), "describe", symbol)

    assert described.returncode != 0, described.stdout
    assert "Symbol not found" in described.stderr


def test_grpcurl_calls_by_reflection_without_protos(farm: LocalFarm) -> None:
    called = grpcurl(*with_key(farm), edge(farm), "farm.auth.v1.AuthService/WhoAmI")

    assert called.returncode == 0, called.stderr
    assert "admin" in json.loads(called.stdout)["scopes"]


def test_grpcurl_reflection_without_a_key_is_refused(farm: LocalFarm) -> None:
    listed = grpcurl("-plaintext", edge(farm), "list")

    assert listed.returncode != 0
    assert "Unauthenticated" in listed.stderr
    assert "farm.tasks.v1.TaskService" not in listed.stdout


def buf_curl(farm: LocalFarm, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BUF, "curl", "--protocol", "grpc", "--http2-prior-knowledge", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_buf_curl_lists_and_calls_by_reflection(farm: LocalFarm) -> None:
    key = ["-H", f"authorization: Bearer {farm.admin_key}", "--reflect-header", "*"]
    services = buf_curl(farm, *key, "--list-services", farm.envoy_url)
    called = buf_curl(farm, *key, f"{farm.envoy_url}/farm.auth.v1.AuthService/WhoAmI")

    assert services.returncode == 0, services.stderr
    assert set(services.stdout.split()) >= set(PUBLIC_SERVICES)
    assert called.returncode == 0, called.stderr
    assert "admin" in json.loads(called.stdout)["scopes"]
