"""The agents' client of baselines and profiles (farm_agent.saved.client) against real storage."""

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from farm_agent.errors import TaskFailure
from farm_agent.saved.client import StorageSavedState
from farm_agent.settings import AgentSettings
from farm_agent.work.uploader import ArtifactOwner, RetryPolicy
from farm_core.saved import BaselineKey
from farm_core.task_errors import ErrorCode
from tests.helpers import TEST_PUBLIC_KEY, agent_credential, grant_for
from tests.integration.storage.conftest import Storage, agent_token

pytestmark = pytest.mark.integration

KEY = BaselineKey("home", "https://shop.example/", 1280, 800)
PNG = b"\x89PNG\r\n\x1a\n" + b"p" * 64
STATE = json.dumps({"cookies": [{"name": "sid", "value": "1"}], "origins": []}).encode()


def task_of(tenant: str) -> ArtifactOwner:
    """A task of `tenant` the agent was handed, with the scheduler's grant of it."""
    grant = grant_for("task-1", tenant, profiles=("shopper",), baselines=(KEY.name,))
    return ArtifactOwner(tenant, "task-1", grant)


@pytest.fixture
async def client(storage: Storage, tmp_path: Path) -> AsyncIterator[StorageSavedState]:
    settings = AgentSettings(
        FARM_HOME=tmp_path,
        FARM_IDENTITY_PUBLIC_KEY=TEST_PUBLIC_KEY,
        credential=agent_credential(),
        storage_address=storage.address,
    )
    saved = StorageSavedState(settings, RetryPolicy(attempts=1))
    try:
        yield saved
    finally:
        await saved.close()


async def test_a_profile_is_empty_until_saved_then_read_back_for_its_tenant_only(
    storage: Storage, client: StorageSavedState
) -> None:
    assert await client.load_profile(task_of(storage.tenant), "shopper") == b""

    await client.save_profile(task_of(storage.tenant), "shopper", STATE)

    assert await client.load_profile(task_of(storage.tenant), "shopper") == STATE
    assert await client.load_profile(task_of("another-tenant"), "shopper") == b""


async def test_a_baseline_is_made_from_an_artifact_once_and_read_back(
    storage: Storage, client: StorageSavedState
) -> None:
    assert await client.baseline_image(task_of(storage.tenant), KEY) is None
    uploaded = await storage.upload(
        "task-1", "screenshot", PNG, metadata=agent_token(storage.tenant)
    )

    made = await client.create_baseline(task_of(storage.tenant), KEY, uploaded.artifact.id)
    again = await client.create_baseline(task_of(storage.tenant), KEY, uploaded.artifact.id)

    assert made.created and not again.created
    assert again.id == made.id
    image = await client.baseline_image(task_of(storage.tenant), KEY)
    assert image is not None
    assert (image.id, image.image) == (made.id, PNG)
    assert await client.baseline_image(task_of("another-tenant"), KEY) is None


async def test_a_profile_over_the_size_limit_fails_the_task_as_over_quota(
    storage: Storage, client: StorageSavedState
) -> None:
    too_large = b'{"cookies": [], "origins": [], "x": "' + b"y" * 1024 * 1024 + b'"}'

    with pytest.raises(TaskFailure) as failed:
        await client.save_profile(task_of(storage.tenant), "shopper", too_large)

    assert failed.value.code is ErrorCode.QUOTA_EXCEEDED
    assert failed.value.message.startswith("profile 'shopper' was refused: ")


async def test_a_call_without_the_tasks_grant_fails_the_task_and_reads_nothing(
    storage: Storage, client: StorageSavedState
) -> None:
    await client.save_profile(task_of(storage.tenant), "shopper", STATE)
    ungranted = ArtifactOwner(storage.tenant, "task-1", grant="")

    with pytest.raises(TaskFailure) as failed:
        await client.load_profile(ungranted, "shopper")

    assert failed.value.code is ErrorCode.UPLOAD_FAILED
    assert "PERMISSION_DENIED: grant:" in failed.value.message
