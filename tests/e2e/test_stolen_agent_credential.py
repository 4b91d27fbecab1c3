"""An agent's credential, stolen from its host, does only an agent's work.

The agent host runs any web page, so it holds no key that can sign an identity:
only a credential auth's key signed for it (role agent). Taken from the farm's
own agent-1, it is refused at the edge and by every service for anything but
storing what a task made, and then only for the tenant it names.
"""

import grpc
import httpx
import pytest

from farm.auth.v1 import auth_pb2, auth_pb2_grpc
from farm.storage.v1 import artifacts_pb2, artifacts_pb2_grpc, ingest_pb2, ingest_pb2_grpc
from farm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from farm_cli.launcher.farm import LocalFarm
from farm_core.identity import IDENTITY_HEADER, TENANT_HEADER
from tests.e2e.conftest import Client
from tests.pages import Site

pytestmark = pytest.mark.e2e

Metadata = tuple[tuple[str, str], ...]


@pytest.fixture(scope="module")
def stolen(farm: LocalFarm) -> str:
    """The credential the launcher gave agent-1, as a thief on its host would find it."""
    return farm.process("agent-1").spec.env["FARM_AGENT_CREDENTIAL"]


@pytest.fixture(scope="module")
def other_tenants_artifact(admin: Client, site: Site) -> str:
    """A screenshot of the tenant "default", which the agent's credential must not read."""
    task = admin.run({"url": site.url("/page"), "screenshot": {}})
    return str(task["result"]["artifacts"][0]["id"])


def as_agent(credential: str, tenant: str = "") -> Metadata:
    return ((IDENTITY_HEADER, credential), *(((TENANT_HEADER, tenant),) if tenant else ()))


def refused_code(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    code: grpc.StatusCode = caught.value.code()
    return code


def test_the_agents_environment_holds_no_key_that_signs_identities(farm: LocalFarm) -> None:
    env = farm.process("agent-1").spec.env
    assert "FARM_IDENTITY_KEY" not in env
    assert "PRIVATE KEY" not in "".join(env.values())
    assert env["FARM_IDENTITY_PUBLIC_KEY"].startswith("-----BEGIN PUBLIC KEY-----")


def test_the_edge_refuses_the_credential_as_a_key_or_as_an_identity(
    farm: LocalFarm, stolen: str
) -> None:
    with httpx.Client(base_url=farm.envoy_url, timeout=10) as http:
        as_key = http.post(
            "/v1/tasks",
            json={"url": "http://x.test", "content": {}},
            headers={"authorization": f"Bearer {stolen}"},
        )
        as_identity = http.get("/v1/tasks", headers={IDENTITY_HEADER: stolen})

    assert as_key.status_code == 401
    assert as_identity.status_code == 401


def test_the_scheduler_refuses_to_create_a_task_with_it(farm: LocalFarm, stolen: str) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{farm.config.ports.scheduler}") as channel:
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        request = tasks_pb2.CreateTaskRequest(
            spec=tasks_pb2.TaskSpec(url="http://x.test", content=tasks_pb2.ContentOptions())
        )
        created = refused_code(
            lambda: tasks.CreateTask(request, metadata=as_agent(stolen, "default"), timeout=10)
        )
        listed = refused_code(
            lambda: tasks.ListTasks(
                tasks_pb2.ListTasksRequest(), metadata=as_agent(stolen, "default"), timeout=10
            )
        )

    assert created == grpc.StatusCode.PERMISSION_DENIED
    assert listed == grpc.StatusCode.PERMISSION_DENIED


def test_storage_refuses_to_show_another_tenants_artifact_to_it(
    farm: LocalFarm, stolen: str, other_tenants_artifact: str
) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{farm.config.ports.storage}") as channel:
        artifacts = artifacts_pb2_grpc.ArtifactServiceStub(channel)
        metadata = as_agent(stolen, "default")
        got = refused_code(
            lambda: artifacts.GetArtifact(
                artifacts_pb2.GetArtifactRequest(id=other_tenants_artifact),
                metadata=metadata,
                timeout=10,
            )
        )
        listed = refused_code(
            lambda: artifacts.ListArtifacts(
                artifacts_pb2.ListArtifactsRequest(), metadata=metadata, timeout=10
            )
        )

    assert got == grpc.StatusCode.PERMISSION_DENIED
    assert listed == grpc.StatusCode.PERMISSION_DENIED


def test_auth_refuses_it_even_what_any_identity_may_call(farm: LocalFarm, stolen: str) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{farm.config.ports.auth}") as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        metadata = as_agent(stolen, "default")
        tenant = refused_code(
            lambda: auth.GetTenant(
                auth_pb2.GetTenantRequest(name="default"), metadata=metadata, timeout=10
            )
        )
        keys = refused_code(
            lambda: auth.CreateApiKey(
                auth_pb2.CreateApiKeyRequest(name="stolen", scopes=["admin"]),
                metadata=metadata,
                timeout=10,
            )
        )

    assert tenant == grpc.StatusCode.PERMISSION_DENIED
    assert keys == grpc.StatusCode.PERMISSION_DENIED


def test_it_stores_only_for_the_tenant_it_names(farm: LocalFarm, stolen: str) -> None:
    def upload(named_tenant: str, header_tenant: str) -> ingest_pb2.UploadArtifactResponse:
        header = ingest_pb2.UploadHeader(
            tenant=header_tenant,
            task_id="task-of-agent-1",
            name="shot",
            kind=tasks_pb2.ARTIFACT_KIND_SCREENSHOT,
            content_type="image/png",
        )
        messages = [
            ingest_pb2.UploadArtifactRequest(header=header),
            ingest_pb2.UploadArtifactRequest(chunk=b"\x89PNG"),
        ]
        response: ingest_pb2.UploadArtifactResponse = ingest.UploadArtifact(
            iter(messages), metadata=as_agent(stolen, named_tenant), timeout=10
        )
        return response

    with grpc.insecure_channel(f"127.0.0.1:{farm.config.ports.storage}") as channel:
        ingest = ingest_pb2_grpc.ArtifactIngestServiceStub(channel)
        stored = upload("tenant-a", "tenant-a")
        crossed = refused_code(lambda: upload("tenant-a", "tenant-b"))

    assert stored.artifact.size_bytes == 4
    assert crossed == grpc.StatusCode.PERMISSION_DENIED
