"""The agent as a service: health over gRPC, a task from NATS to storage and back as events."""

import uuid
from pathlib import Path

import grpc
import nats
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.aio.msg import Msg

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_agent.server import AgentService
from farm_core.free_ports import free_port
from farm_core.identity import CredentialRole, IdentitySigner
from farm_core.identity_keys import new_private_key, private_pem
from farm_core.queue import (
    TASK_EVENT_SUBJECTS,
    TASK_STREAM,
    Priority,
    consumer_name,
    ensure_streams,
    task_subject,
)
from farm_core.server import ServiceHost
from tests.conftest import NatsServer
from tests.helpers import assert_eventually
from tests.integration.agent.conftest import SettingsFactory
from tests.integration.agent.fakes import FakeStorage
from tests.pages import Site

pytestmark = pytest.mark.integration


async def test_agent_serves_health_and_runs_a_task_into_storage(
    nats_server: NatsServer,
    fake_storage: FakeStorage,
    make_settings: SettingsFactory,
    site: Site,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    home: Path = tmp_path_factory.mktemp("s")
    settings = make_settings(
        FARM_HOME=home,
        NATS_URL=nats_server.url,
        id="served-agent",
        region="eu",
        storage_address=fake_storage.address,
        allow="127.0.0.0/8,localhost",
    )
    host = ServiceHost(AgentService(settings, on_drain_notice=lambda: None), settings, free_port())
    received: list[queue_pb2.AgentEvent] = []

    async def on_event(message: Msg) -> None:
        received.append(queue_pb2.AgentEvent.FromString(message.data))

    nc = await nats.connect(nats_server.url)
    await nc.subscribe(TASK_EVENT_SUBJECTS, cb=on_event)
    js = nc.jetstream()
    await ensure_streams(js)
    await host.start()
    try:
        async with grpc.aio.insecure_channel(host.address) as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest()
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING

        task_id = f"task-{uuid.uuid4().hex[:12]}"
        spec = tasks_pb2.TaskSpec(
            url=site.url("/box"), screenshot=tasks_pb2.ScreenshotOptions(selector="#box")
        )
        item = queue_pb2.WorkItem(task_id=task_id, tenant="acme", spec=spec)
        # The agent of region "eu" takes work of its own region as well as of "any".
        await js.publish(
            task_subject("eu", Priority.HIGH),
            item.SerializeToString(),
            headers={"Nats-Msg-Id": task_id},
        )

        await assert_eventually(
            lambda: any(event.status == tasks_pb2.TASK_STATUS_SUCCEEDED for event in received),
            within=20,
            message="task did not succeed",
        )
        final = received[-1]
        assert final.task_id == task_id
        assert final.agent_id == "served-agent"
        [ref] = final.result.artifacts
        [stored] = fake_storage.ingest.stored
        assert ref.id == "artifact-1"
        assert (stored.identity.tenant, stored.header.task_id) == ("acme", task_id)
        assert b"".join(stored.chunks).startswith(b"\x89PNG")
    finally:
        await host.stop(2)
        for priority in Priority:
            await js.delete_consumer(TASK_STREAM, consumer_name("eu", priority))
        await nc.close()
    assert not (home / "agents" / "served-agent").joinpath("tmp").exists()


async def test_an_agent_whose_credential_storage_refuses_asks_to_drain(
    nats_server: NatsServer,
    fake_storage: FakeStorage,
    make_settings: SettingsFactory,
    site: Site,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Revoked, it would fail every task it took with UPLOAD_FAILED, each an attempt.
    settings = make_settings(
        FARM_HOME=tmp_path_factory.mktemp("r"),
        NATS_URL=nats_server.url,
        id="refused-agent",
        region="refused",
        storage_address=fake_storage.address,
        allow="127.0.0.0/8,localhost",
        credential=IdentitySigner(private_pem(new_private_key())).credential(
            CredentialRole.AGENT, "refused-agent"
        ),
    )
    drain_notices: list[str] = []
    service = AgentService(settings, on_drain_notice=lambda: drain_notices.append("drain"))
    host = ServiceHost(service, settings, free_port())
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await ensure_streams(js)
    await host.start()
    try:
        task_id = f"task-{uuid.uuid4().hex[:12]}"
        spec = tasks_pb2.TaskSpec(url=site.url("/box"), screenshot=tasks_pb2.ScreenshotOptions())
        item = queue_pb2.WorkItem(task_id=task_id, tenant="acme", spec=spec)
        await js.publish(
            task_subject("refused", Priority.HIGH),
            item.SerializeToString(),
            headers={"Nats-Msg-Id": task_id},
        )
        await assert_eventually(
            lambda: drain_notices == ["drain"], within=20, message="the agent did not drain"
        )
        assert fake_storage.ingest.stored == []
    finally:
        await host.stop(2)
        for priority in Priority:
            await js.delete_consumer(TASK_STREAM, consumer_name("refused", priority))
        await nc.close()
