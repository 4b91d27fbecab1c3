"""An agent's credential, stolen from its host, does only an agent's work.

The agent host runs any web page, so it holds no key that can sign an identity:
only a credential auth's key signed for it (role agent). Taken from the farm's
own agent-1, it is refused at the edge and by every service for anything but
storing what a task made and reading or keeping its tenant's profiles and
baselines, and then only with the scheduler's grant of that task (which only an
agent handed the task has), for the tenant the grant names. An event about a task
without its grant changes nothing.
"""

import asyncio
import secrets
import uuid

import grpc
import httpx
import nats
import pytest

from farm.auth.v1 import auth_pb2, auth_pb2_grpc
from farm.queue.v1 import queue_pb2
from farm.storage.v1 import artifacts_pb2, artifacts_pb2_grpc, ingest_pb2, ingest_pb2_grpc
from farm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from farm_cli.launcher.farm import LocalFarm
from farm_core.grants import GRANT_KEY_FILE, GrantSigner, UploadGrant
from farm_core.identity import (
    IDENTITY_HEADER,
    TENANT_HEADER,
    CredentialRole,
    IdentitySigner,
    credential_id,
)
from farm_core.queue import EVENT_STREAM, event_subject
from farm_scheduler.events import DURABLE_NAME
from tests.e2e.conftest import Client
from tests.helpers import eventually
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


def held_grant(farm: LocalFarm, task_id: str, tenant: str) -> str:
    """The grant a WorkItem of `task_id` carried: what agent-1 holds for a task it was handed."""
    signer = GrantSigner((farm.home / GRANT_KEY_FILE).read_text())
    return signer.sign(UploadGrant(task_id, tenant), 600)


def upload(
    channel: grpc.Channel, credential: str, named_tenant: str, header: ingest_pb2.UploadHeader
) -> ingest_pb2.UploadArtifactResponse:
    """UploadArtifact of four bytes with `header`, as the agent acting for `named_tenant`."""
    ingest = ingest_pb2_grpc.ArtifactIngestServiceStub(channel)
    messages = [
        ingest_pb2.UploadArtifactRequest(header=header),
        ingest_pb2.UploadArtifactRequest(chunk=b"\x89PNG"),
    ]
    response: ingest_pb2.UploadArtifactResponse = ingest.UploadArtifact(
        iter(messages), metadata=as_agent(credential, named_tenant), timeout=10
    )
    return response


def shot_header(tenant: str, task_id: str, grant: str) -> ingest_pb2.UploadHeader:
    return ingest_pb2.UploadHeader(
        tenant=tenant,
        task_id=task_id,
        name="shot",
        kind=tasks_pb2.ARTIFACT_KIND_SCREENSHOT,
        content_type="image/png",
        grant=grant,
    )


def test_it_stores_only_for_the_tenant_it_names(farm: LocalFarm, stolen: str) -> None:
    grant = held_grant(farm, "task-of-agent-1", "tenant-a")
    with grpc.insecure_channel(f"127.0.0.1:{farm.config.ports.storage}") as channel:
        stored = upload(
            channel, stolen, "tenant-a", shot_header("tenant-a", "task-of-agent-1", grant)
        )
        crossed = refused_code(
            lambda: upload(
                channel, stolen, "tenant-a", shot_header("tenant-b", "task-of-agent-1", grant)
            )
        )

    assert stored.artifact.size_bytes == 4
    assert crossed == grpc.StatusCode.PERMISSION_DENIED


def test_it_stores_nothing_for_a_task_it_does_not_hold(
    farm: LocalFarm, stolen: str, admin: Client, site: Site
) -> None:
    task = admin.run({"url": site.url("/page"), "screenshot": {}})
    another_tasks_grant = held_grant(farm, "task-of-agent-1", "default")
    with grpc.insecure_channel(f"127.0.0.1:{farm.config.ports.storage}") as channel:
        codes = [
            refused_code(
                lambda grant=grant: upload(
                    channel, stolen, "default", shot_header("default", task["id"], grant)
                )
            )
            for grant in ("", another_tasks_grant)
        ]

    assert codes == [grpc.StatusCode.PERMISSION_DENIED] * 2
    # The task's own screenshot is the only artifact it has.
    listed = admin.http.get("/v1/artifacts", params={"taskId": task["id"]}).json()
    assert [artifact["name"] for artifact in listed["artifacts"]] == ["screenshot"]


@pytest.fixture(scope="module")
def other_tenants_profile(admin: Client, site: Site) -> str:
    """A signed-in profile of the tenant "default" (its cookies), which the thief is after."""
    name = f"stolen-{secrets.token_hex(4)}"
    task = admin.run(
        {
            "url": site.url("/login"),
            "maxAttempts": 1,
            "profile": name,
            "saveProfile": True,
            "steps": [{"click": "#sign-in"}],
            "extract": {"fields": {"state": "#state"}},
        }
    )
    assert task["status"] == "TASK_STATUS_SUCCEEDED", task.get("error")
    return name


def saved_cookies(admin: Client, profile: str) -> int:
    """How many cookies the tenant "default" has saved in `profile`."""
    listed = admin.http.get("/v1/profiles").json()["profiles"]
    return int(next(found["cookies"] for found in listed if found["name"] == profile))


def test_it_cannot_read_or_overwrite_another_tenants_profile(
    farm: LocalFarm, stolen: str, admin: Client, other_tenants_profile: str
) -> None:
    cookies_before = saved_cookies(admin, other_tenants_profile)
    # The grant of a task of another tenant that agent-1 was handed.
    own_grant = held_grant(farm, "task-of-agent-1", "tenant-a")
    with grpc.insecure_channel(f"127.0.0.1:{farm.config.ports.storage}") as channel:
        ingest = ingest_pb2_grpc.ArtifactIngestServiceStub(channel)

        def read(grant: str, named_tenant: str) -> object:
            return ingest.GetProfileState(
                ingest_pb2.GetProfileStateRequest(name=other_tenants_profile, grant=grant),
                metadata=as_agent(stolen, named_tenant),
                timeout=10,
            )

        reads = [
            refused_code(lambda: read("", "default")),
            refused_code(lambda: read(own_grant, "default")),
            # Naming no tenant, the grant's tenant's profiles: but it names no profile.
            refused_code(lambda: read(own_grant, "")),
        ]
        overwrite = refused_code(
            lambda: ingest.SaveProfile(
                ingest_pb2.SaveProfileRequest(
                    name=other_tenants_profile, state=b'{"cookies": [], "origins": []}'
                ),
                metadata=as_agent(stolen, "default"),
                timeout=10,
            )
        )

    assert reads == [grpc.StatusCode.PERMISSION_DENIED] * 3
    assert overwrite == grpc.StatusCode.PERMISSION_DENIED
    assert cookies_before > 0
    assert saved_cookies(admin, other_tenants_profile) == cookies_before


async def forge_events(farm: LocalFarm, task_id: str, grants: list[str]) -> None:
    """Publishes, with agent-1's own NATS login, a SUCCEEDED event of `task_id` with each of
    `grants`, then waits until the scheduler has dealt with every event."""
    connection = await nats.connect(**farm.nats_access("agent-1").connect_options())
    watcher = await nats.connect(**farm.nats_access("scheduler").connect_options())
    try:
        js = connection.jetstream()
        for grant in grants:
            event = queue_pb2.AgentEvent(
                event_id=uuid.uuid4().hex,
                task_id=task_id,
                status=tasks_pb2.TASK_STATUS_SUCCEEDED,
                agent_id="agent-1",
                attempt=1,
                result=tasks_pb2.TaskResult(title="forged"),
                grant=grant,
            )
            event.time.GetCurrentTime()
            await js.publish(
                event_subject(task_id, "agent-1"),
                event.SerializeToString(),
                headers={"Nats-Msg-Id": event.event_id},
            )
        for _ in range(200):
            info = await watcher.jetstream().consumer_info(EVENT_STREAM, DURABLE_NAME)
            if info.num_pending == 0 and info.num_ack_pending == 0:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the scheduler did not take the forged events")
    finally:
        await connection.close()
        await watcher.close()


def test_a_forged_event_for_a_task_it_does_not_hold_changes_nothing(
    farm: LocalFarm, admin: Client, site: Site
) -> None:
    # Queued for a region no agent serves, so no agent ever holds it.
    task = admin.create({"url": site.url("/page"), "content": {}, "region": "nowhere"})
    another_tasks_grant = held_grant(farm, "task-of-agent-1", "default")

    asyncio.run(forge_events(farm, task["id"], ["", another_tasks_grant]))

    after = admin.get(task["id"])
    assert after["status"] == "TASK_STATUS_QUEUED"
    assert "result" not in after


def test_once_revoked_over_http_storage_refuses_it_and_other_agents_keep_working(
    farm: LocalFarm, admin: Client, site: Site
) -> None:
    # A credential of its own, as `farm credential agent` issues: the farm's agents keep theirs.
    thief = IdentitySigner(farm.identity_key).credential(CredentialRole.AGENT, "agent-thief")
    grant = held_grant(farm, "task-of-the-thief", "tenant-a")
    header = shot_header("tenant-a", "task-of-the-thief", grant)
    with grpc.insecure_channel(f"127.0.0.1:{farm.config.ports.storage}") as channel:
        assert upload(channel, thief, "tenant-a", header).artifact.size_bytes == 4

        response = admin.http.post("/v1/credentials:revoke", json={"id": credential_id(thief)})
        assert response.status_code == 200, response.text
        assert response.json()["id"] == credential_id(thief)

        def refused_as_revoked() -> bool:
            try:
                upload(channel, thief, "tenant-a", header)
            except grpc.RpcError as error:
                return bool(error.details() == "credential revoked")
            return False

        eventually(refused_as_revoked, message="storage still takes the revoked credential")
    task = admin.run({"url": site.url("/page"), "screenshot": {}})
    assert task["status"] == "TASK_STATUS_SUCCEEDED", task.get("error")
