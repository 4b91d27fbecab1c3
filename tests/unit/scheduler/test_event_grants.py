"""The grant on an agent's event: its signature checked once per grant, its expiry every time."""

import datetime as dt

import pytest

from farm_core.grants import TREE_PREFIX, GrantSigner, UploadGrant
from farm_scheduler.grants import Grants
from farm_scheduler.records import new_record
from tests.helpers import TEST_GRANT_KEY, assert_eventually, task_spec
from tests.unit.scheduler.conftest import validate

NOW = dt.datetime.now(dt.UTC)


class CountingSigner(GrantSigner):
    """A signer that counts the grants it checks."""

    checked = 0

    def read(self, grant: str, field: str) -> UploadGrant:
        self.checked += 1
        return super().read(grant, field)


def test_a_tasks_later_events_skip_the_signature_check() -> None:
    signer = CountingSigner(TEST_GRANT_KEY)
    grants = Grants(signer, grace_seconds=60)
    grant = signer.sign(UploadGrant("t1", "acme"), 600)

    answers = [grants.refusal(grant, "t1") for _ in range(3)]

    assert answers == ["", "", ""]
    assert signer.checked == 1
    assert "it is for task 't1'" in grants.refusal(grant, "t2")


def test_a_tampered_grant_is_refused_after_the_genuine_one_was_taken() -> None:
    signer = CountingSigner(TEST_GRANT_KEY)
    grants = Grants(signer, grace_seconds=60)
    grant = signer.sign(UploadGrant("t1", "acme"), 600)
    assert grants.refusal(grant, "t1") == ""

    assert grants.refusal(grant[:-4] + "AAAA", "t1").startswith("grant: grant refused")


async def test_a_remembered_grant_is_refused_once_it_expires() -> None:
    signer = CountingSigner(TEST_GRANT_KEY)
    grants = Grants(signer, grace_seconds=60)
    grant = signer.sign(UploadGrant("t1", "acme"), 1)
    assert grants.refusal(grant, "t1") == ""

    await assert_eventually(lambda: grants.refusal(grant, "t1") != "", within=3.0)
    assert "expired" in grants.refusal(grant, "t1")


@pytest.mark.parametrize("trees", [True, False])
def test_a_groups_grants_each_move_their_own_task_in_either_form(trees: bool) -> None:
    """Trees off (a rolling upgrade, storage not yet upgraded) gives single grants."""
    spec = validate(task_spec())
    records = [new_record("acme", spec, None, NOW, "") for _ in range(3)]
    grants = Grants(CountingSigner(TEST_GRANT_KEY), grace_seconds=60, trees=trees)

    issued = grants.for_tasks(records, NOW)

    assert [grant.startswith(TREE_PREFIX) for grant in issued] == [trees] * 3
    assert [
        grants.refusal(grant, record.id) for grant, record in zip(issued, records, strict=True)
    ] == [""] * 3
    assert "it is for task" in grants.refusal(issued[0], records[1].id)
