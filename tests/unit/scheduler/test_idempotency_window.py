"""Idempotency keys name their first task for a window of time, then a new task takes them.

A repeat must ask for the same spec: another spec with the key is refused.
"""

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_core.db import async_database_url
from farm_core.errors import InvalidArgument
from farm_scheduler.batches import Accepted, store_batch
from farm_scheduler.records import TaskRecord
from farm_scheduler.store import TaskStore
from farm_scheduler.validation import validate_spec

WINDOW = dt.timedelta(hours=1)
T0 = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(tmp_path: Path, clock: Clock) -> AsyncIterator[TaskStore]:
    """A scheduler database in a SQLite file, with a one-hour window and the test's clock."""
    store = TaskStore(async_database_url("", tmp_path / "scheduler.db"), WINDOW, clock)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


def keyed(key: str) -> tasks_pb2.TaskSpec:
    spec = tasks_pb2.TaskSpec(url="https://example.com/", idempotency_key=key)
    spec.screenshot.SetInParent()
    return validate_spec(spec, max_attempts_cap=10, default_timeout_ms=30000)


async def test_same_key_within_the_window_returns_the_first_task(
    store: TaskStore, clock: Clock
) -> None:
    first, created = await store.create("acme", keyed("nightly"))
    clock.now = T0 + WINDOW - dt.timedelta(seconds=1)

    again, created_again = await store.create("acme", keyed("nightly"))

    assert (created, created_again) == (True, False)
    assert again.id == first.id


async def test_same_key_after_the_window_creates_a_new_task(store: TaskStore, clock: Clock) -> None:
    first, _ = await store.create("acme", keyed("nightly"))
    clock.now = T0 + WINDOW

    second, created = await store.create("acme", keyed("nightly"))
    clock.now = T0 + WINDOW + dt.timedelta(minutes=5)
    third, created_third = await store.create("acme", keyed("nightly"))

    assert created and second.id != first.id
    # The new task holds the key for its own window.
    assert (created_third, third.id) == (False, second.id)
    # The first task is still there, its spec with the key it was created with.
    kept = await store.get("acme", first.id)
    assert kept.spec.idempotency_key == "nightly"


async def test_window_counts_per_tenant(store: TaskStore, clock: Clock) -> None:
    first, _ = await store.create("acme", keyed("nightly"))
    other, created = await store.create("globex", keyed("nightly"))
    assert created and other.id != first.id


async def test_same_key_with_another_spec_is_refused_naming_the_key(store: TaskStore) -> None:
    first, _ = await store.create("acme", keyed("nightly"))
    other = keyed("nightly")
    other.region = "eu"

    again, refused = await store_batch(store, "acme", [keyed("nightly"), other], None)

    assert again == Accepted(first, created=False)
    assert isinstance(refused, InvalidArgument)
    assert refused.field == "idempotencyKey"
    assert str(refused) == (
        f"idempotencyKey: 'nightly' was used by task {first.id} with a different spec"
    )


async def test_same_key_with_another_spec_in_one_batch_is_refused(store: TaskStore) -> None:
    other = keyed("weekly")
    other.max_attempts = 1

    first, same, refused = await store_batch(
        store, "acme", [keyed("weekly"), keyed("weekly"), other], None
    )

    assert isinstance(first, Accepted) and first.created
    assert same == Accepted(first.record, created=False)
    assert isinstance(refused, InvalidArgument)
    assert str(refused) == (
        f"idempotencyKey: 'weekly' was used by task {first.record.id} with a different spec"
    )


async def test_single_create_with_another_spec_gets_no_other_task(store: TaskStore) -> None:
    first, _ = await store.create("acme", keyed("nightly"))
    other = keyed("nightly")
    other.region = "eu"

    with pytest.raises(InvalidArgument) as refused:
        await store.create("acme", other)

    assert str(refused.value) == (
        f"idempotencyKey: 'nightly' was used by task {first.id} with a different spec"
    )


async def test_create_that_loses_the_race_for_a_key_to_another_spec_is_refused(
    store: TaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = await store.create("acme", keyed("nightly"))
    find_by_key = store._find_by_key
    looked_up: list[str] = []

    async def not_yet_committed(tenant: str, key: str) -> TaskRecord | None:
        # The first look-up misses the winner, as one made before its commit would.
        looked_up.append(key)
        return None if len(looked_up) == 1 else await find_by_key(tenant, key)

    monkeypatch.setattr(store, "_find_by_key", not_yet_committed)
    other = keyed("nightly")
    other.max_attempts = 1

    with pytest.raises(InvalidArgument, match=f"used by task {first.id} with a different spec"):
        await store.create("acme", other)
    assert looked_up == ["nightly", "nightly"]
