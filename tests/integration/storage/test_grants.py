"""Uploads need the scheduler's grant of their task: storage stores for nothing else."""

from collections.abc import Callable

import grpc
import pytest

from farm_core.grants import GrantSigner, UploadGrant
from farm_core.identity_keys import new_private_key
from tests.helpers import TEST_GRANTS, grant_for
from tests.integration.storage.conftest import Storage

pytestmark = pytest.mark.integration

TASK = "task-held"

BAD_GRANTS: dict[str, Callable[[str], str]] = {
    "none": lambda tenant: "",
    "another task's": lambda tenant: grant_for("task-other", tenant),
    "another tenant's": lambda tenant: grant_for(TASK, "tenant-other"),
    "signed with another key": lambda tenant: GrantSigner(new_private_key()).sign(
        UploadGrant(TASK, tenant), 600
    ),
    "expired": lambda tenant: TEST_GRANTS.sign(UploadGrant(TASK, tenant), -60),
    "another task's in a tree": lambda tenant: tree_grants(tenant)[1],
    "its own in a tree, expired": lambda tenant: tree_grants(tenant, lifetime=-60)[0],
    "its own in a tree signed with another key": lambda tenant: tree_grants(
        tenant, signer=GrantSigner(new_private_key())
    )[0],
}


def tree_grants(tenant: str, lifetime: float = 600, signer: GrantSigner = TEST_GRANTS) -> list[str]:
    """Grants of TASK and two others signed together, as a batch's are."""
    owners = (TASK, "task-other", "task-third")
    return signer.sign_tree([(UploadGrant(owner, tenant), lifetime) for owner in owners])


async def test_an_upload_with_its_tasks_grant_is_stored(storage: Storage) -> None:
    stored = await storage.upload(TASK, "shot", b"png")

    assert stored.artifact.task_id == TASK


async def test_an_upload_with_its_tasks_grant_from_a_tree_is_stored(storage: Storage) -> None:
    grants = tree_grants(storage.tenant)

    stored = await storage.upload(TASK, "shot", b"png", grant=grants[0])
    other = await storage.upload("task-other", "shot", b"png", grant=grants[1])

    assert (stored.artifact.task_id, other.artifact.task_id) == (TASK, "task-other")


@pytest.mark.parametrize("why", list(BAD_GRANTS))
async def test_an_upload_without_a_valid_grant_of_its_task_is_refused(
    storage: Storage, why: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await storage.upload(TASK, "shot", b"png", grant=BAD_GRANTS[why](storage.tenant))

    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert (caught.value.details() or "").startswith("header.grant:")
    assert await storage.list_all(TASK) == []
