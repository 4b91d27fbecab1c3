"""create_tasks over several CreateTasks calls: the same keys on a retry, and a failure mid-way."""

from collections.abc import Sequence

import grpc
import pytest

import browserfarm
from farm.tasks.v1 import tasks_pb2
from tests.unit.sdk.conftest import Refusals

GOOD = {"url": "https://example.com", "content": {}}
SERVED = (grpc.StatusCode.OK, "")
UNAVAILABLE = (grpc.StatusCode.UNAVAILABLE, "")


def client(url: str) -> browserfarm.Client:
    return browserfarm.Client(url, "bf_key", backoff_seconds=0.01, max_attempts=2)


def keys(specs: Sequence[object]) -> list[str]:
    """The idempotency keys of TaskSpecs."""
    return [spec.idempotency_key for spec in specs if isinstance(spec, tasks_pb2.TaskSpec)]


def test_2500_specs_are_queued_in_three_calls_and_a_retried_call_carries_the_same_keys(
    refusing_farm: tuple[str, Refusals], refusals: Refusals
) -> None:
    refusals.statuses[:] = [SERVED, UNAVAILABLE]
    specs = [{**GOOD, "labels": {"n": str(n)}} for n in range(2500)]
    with client(refusing_farm[0]) as farm:
        items = farm.create_tasks(specs)
    assert [len(sent) for sent in refusals.batches] == [1000, 1000, 1000, 500]
    assert keys(refusals.batches[1]) == keys(refusals.batches[2])
    assert [item.index for item in items] == list(range(2500))
    assert [item.task.proto.spec.labels["n"] for item in items if item.task] == [
        str(n) for n in range(2500)
    ]
    assert len({item.task.id for item in items if item.task}) == 2500


def test_a_call_failing_mid_way_raises_the_items_so_far_and_the_specs_not_sent(
    refusing_farm: tuple[str, Refusals], refusals: Refusals
) -> None:
    refusals.statuses[:] = [SERVED, UNAVAILABLE, UNAVAILABLE]
    refused = {"url": "https://example.com", "viewprt": {}}
    specs = [GOOD] * 2500
    specs[1500] = refused
    with client(refusing_farm[0]) as farm:
        with pytest.raises(browserfarm.BatchIncomplete) as raised:
            farm.create_tasks(specs)
        stopped = raised.value
        assert stopped.next_index == 1000
        assert [item.index for item in stopped.items] == list(range(1000))
        assert all(item.ok for item in stopped.items)
        assert isinstance(stopped.error, browserfarm.Unavailable)
        assert stopped.code == grpc.StatusCode.UNAVAILABLE
        assert len(refusals.batches) == 3  # the second call, made twice; the third never
        assert len(stopped.remaining) == 1500 and stopped.remaining[500] == refused
        assert keys(stopped.remaining)[:1000] == keys(refusals.batches[2])

        resumed = farm.create_tasks(stopped.remaining)
    # Sent again, each spec has its key still: the farm gives each the task it may have made.
    assert keys(refusals.batches[3]) == keys(refusals.batches[2])
    assert [item.ok for item in resumed].count(False) == 1 and not resumed[500].ok


def test_a_rate_limit_mid_way_is_raised_with_its_retry_after(
    refusing_farm: tuple[str, Refusals], refusals: Refusals
) -> None:
    refusals.statuses[:] = [SERVED, (grpc.StatusCode.RESOURCE_EXHAUSTED, "120")]
    with client(refusing_farm[0]) as farm, pytest.raises(browserfarm.BatchIncomplete) as raised:
        farm.create_tasks([GOOD] * 1001)
    assert isinstance(raised.value.error, browserfarm.RateLimited)
    assert raised.value.error.retry_after == 120
    assert (raised.value.next_index, len(raised.value.items)) == (1000, 1000)
    assert len(refusals.batches) == 2


def test_a_first_call_that_fails_is_raised_as_itself(
    refusing_farm: tuple[str, Refusals], refusals: Refusals
) -> None:
    refusals.statuses[:] = [UNAVAILABLE, UNAVAILABLE]
    with client(refusing_farm[0]) as farm, pytest.raises(browserfarm.Unavailable) as raised:
        farm.create_tasks([GOOD] * 1500)
    assert not isinstance(raised.value, browserfarm.BatchIncomplete)
    assert len(refusals.batches) == 2
