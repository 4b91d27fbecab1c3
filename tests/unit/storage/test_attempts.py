"""The attempt fence: which upload of a task's attempts is stale."""

import pytest

from farm_storage.attempts import UNCHECKED, AttemptFence, StaleAttempt, check_fence


@pytest.mark.parametrize(
    ("upload", "newest"),
    [
        (AttemptFence(7, 1), None),
        (AttemptFence(7, 2), AttemptFence(7, 2)),
        (AttemptFence(7, 3), AttemptFence(7, 2)),
        # A task queued again: a later message, its attempts numbered from 1.
        (AttemptFence(9, 1), AttemptFence(7, 3)),
        # An upload that names no attempt (a session's, an older agent's) is not checked.
        (UNCHECKED, AttemptFence(7, 3)),
    ],
)
def test_the_newest_attempt_and_later_ones_may_store(
    upload: AttemptFence, newest: AttemptFence | None
) -> None:
    check_fence("task-1", upload, newest)


@pytest.mark.parametrize(
    ("upload", "newest"),
    [
        (AttemptFence(7, 1), AttemptFence(7, 2)),
        (AttemptFence(7, 3), AttemptFence(9, 1)),
    ],
)
def test_an_attempt_older_than_the_newest_stored_is_refused_naming_the_field(
    upload: AttemptFence, newest: AttemptFence
) -> None:
    with pytest.raises(StaleAttempt) as refused:
        check_fence("task-1", upload, newest)

    assert refused.value.message.startswith(f"header.attempt: attempt {upload.attempt} ")
    assert "not task 'task-1''s running attempt" in refused.value.message
    assert f"attempt {newest.attempt} (work sequence {newest.work_sequence})" in (
        refused.value.message
    )


def test_an_upload_without_an_attempt_is_unchecked() -> None:
    assert not UNCHECKED.checked
    assert AttemptFence(0, 1).checked
