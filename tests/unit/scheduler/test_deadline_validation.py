"""A task's deadline: kept when within the next 24 hours, refused naming the field otherwise."""

import datetime as dt

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_core.errors import InvalidArgument
from farm_core.timestamps import from_timestamp, to_timestamp
from farm_scheduler.validation import validate_spec
from tests.helpers import task_spec
from tests.unit.scheduler.conftest import CAP, DEFAULT_TIMEOUT_MS

NOW = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)


def with_deadline(ahead: dt.timedelta) -> tasks_pb2.TaskSpec:
    dated = task_spec()
    dated.deadline.CopyFrom(to_timestamp(NOW + ahead))
    return dated


def validate_at_noon(spec: tasks_pb2.TaskSpec) -> tasks_pb2.TaskSpec:
    return validate_spec(spec, max_attempts_cap=CAP, default_timeout_ms=DEFAULT_TIMEOUT_MS, now=NOW)


@pytest.mark.parametrize(
    "ahead",
    [dt.timedelta(seconds=1), dt.timedelta(hours=1), dt.timedelta(hours=24)],
    ids=["a second", "an hour", "a day"],
)
def test_deadline_up_to_24_hours_ahead_is_kept(ahead: dt.timedelta) -> None:
    checked = validate_at_noon(with_deadline(ahead))
    assert from_timestamp(checked.deadline) == NOW + ahead


@pytest.mark.parametrize(
    ("ahead", "problem"),
    [
        (dt.timedelta(0), "must be in the future"),
        (dt.timedelta(minutes=-5), "must be in the future"),
        (dt.timedelta(hours=24, seconds=1), "must be at most 24 hours ahead"),
    ],
    ids=["now", "past", "beyond a day"],
)
def test_deadline_outside_the_next_24_hours_is_refused(ahead: dt.timedelta, problem: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_at_noon(with_deadline(ahead))
    assert caught.value.field == "deadline"
    assert caught.value.message.startswith(f"deadline: {problem}")


def test_deadline_that_is_no_valid_time_is_refused() -> None:
    dated = task_spec()
    dated.deadline.seconds = 2**62
    with pytest.raises(InvalidArgument) as caught:
        validate_at_noon(dated)
    assert caught.value.field == "deadline"


def test_no_deadline_stays_unset() -> None:
    assert not validate_at_noon(task_spec()).HasField("deadline")
