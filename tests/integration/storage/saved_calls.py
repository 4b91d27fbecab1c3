"""Calls of baselines in the storage service, as an agent makes them, shared by storage's tests."""

from farm.storage.v1 import ingest_pb2
from farm.tasks.v1 import tasks_pb2
from tests.helpers import grant_for
from tests.integration.storage.conftest import RPC_TIMEOUT, Metadata, Storage, agent_token

PNG_A = b"\x89PNG\r\n\x1a\n" + b"a" * 100
PNG_B = b"\x89PNG\r\n\x1a\n" + b"b" * 120
KEY = ingest_pb2.BaselineKey(
    name="home", url="https://shop.example/", viewport=tasks_pb2.Viewport(width=1280, height=800)
)


def agent(tenant: str) -> Metadata:
    """An agent's identity acting for `tenant`."""
    return agent_token(tenant)


def granted(tenant: str) -> str:
    """The scheduler's grant of a task of `tenant`, which the agent shows on each call."""
    return grant_for(
        "task-compared",
        tenant,
        profiles=("checkout-user", "p1", "signed-in", "big", "not-json", "../escape"),
        baselines=(KEY.name,),
    )


async def create_baseline(
    storage: Storage, artifact_id: str, tenant: str = ""
) -> ingest_pb2.CreateBaselineResponse:
    """CreateBaseline of KEY from `artifact_id`, as an agent of the tenant (default: storage's)."""
    response: ingest_pb2.CreateBaselineResponse = await storage.ingest.CreateBaseline(
        ingest_pb2.CreateBaselineRequest(
            key=KEY, artifact_id=artifact_id, grant=granted(tenant or storage.tenant)
        ),
        metadata=agent(tenant or storage.tenant),
        timeout=RPC_TIMEOUT,
    )
    return response


async def baseline_image(storage: Storage, tenant: str = "") -> ingest_pb2.GetBaselineImageResponse:
    """GetBaselineImage of KEY, as an agent of the storage's tenant (or `tenant`)."""
    response: ingest_pb2.GetBaselineImageResponse = await storage.ingest.GetBaselineImage(
        ingest_pb2.GetBaselineImageRequest(key=KEY, grant=granted(tenant or storage.tenant)),
        metadata=agent(tenant or storage.tenant),
        timeout=RPC_TIMEOUT,
    )
    return response
