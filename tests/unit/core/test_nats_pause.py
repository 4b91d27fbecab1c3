"""Which NATS failures pause the edge check's calls, and for how long."""

import nats.errors
import pytest
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, ServiceUnavailableError

from farm_core.nats_link import NatsPause, unanswered


@pytest.mark.parametrize(
    "error",
    [
        TimeoutError(),
        nats.errors.TimeoutError(),
        nats.errors.NoRespondersError(),
        nats.errors.ConnectionClosedError(),
        ServiceUnavailableError(),
    ],
)
def test_a_call_nats_did_not_answer_starts_the_pause(error: Exception) -> None:
    assert unanswered(error)


@pytest.mark.parametrize(
    "error", [KeyNotFoundError(), KeyWrongLastSequenceError(), ValueError("not NATS")]
)
def test_an_answer_of_jetstreams_starts_no_pause(error: Exception) -> None:
    assert not unanswered(error)


def test_the_pause_ends_after_its_time() -> None:
    now = [100.0]
    pause = NatsPause(call_timeout_seconds=0.5, pause_seconds=2.0, clock=lambda: now[0])
    assert not pause.active
    pause.begin()
    now[0] += 1.9
    assert pause.active
    now[0] += 0.2
    assert not pause.active
