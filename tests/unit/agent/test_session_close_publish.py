"""How an agent publishes a session's close: the same event again on a failure, a few times."""

import asyncio
from typing import Any

import nats.errors
import pytest

from farm.queue.v1 import queue_pb2
from farm_agent.sessions import notices


class FlakyJetStream:
    """Publishes that fail `failures` times, then succeed; records every try."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.tries: list[tuple[str, bytes, dict[str, str]]] = []

    async def publish(self, subject: str, payload: bytes, **options: Any) -> None:
        self.tries.append((subject, payload, options["headers"]))
        if len(self.tries) <= self.failures:
            raise nats.errors.TimeoutError


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    taken: list[float] = []

    async def pause(seconds: float) -> None:
        taken.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", pause)
    return taken


CLOSED = queue_pb2.SessionClosed(session_id="ses_1", agent_id="agent-1", event_id="ev-1")


async def test_a_failed_publish_is_sent_again_as_the_same_event(pauses: list[float]) -> None:
    js = FlakyJetStream(failures=2)
    await notices.publish_closed(js, CLOSED)  # type: ignore[arg-type]
    assert len(js.tries) == 3
    assert {try_[0] for try_ in js.tries} == {"events.sessions.ses_1.agent-1"}
    assert {try_[2]["Nats-Msg-Id"] for try_ in js.tries} == {"ev-1"}
    assert pauses == [0.5, 1.0]


async def test_a_close_never_published_gives_up_after_its_tries_without_a_last_pause(
    pauses: list[float],
) -> None:
    js = FlakyJetStream(failures=100)
    await notices.publish_closed(js, CLOSED)  # type: ignore[arg-type]
    assert len(js.tries) == notices.PUBLISH_TRIES
    assert len(pauses) == notices.PUBLISH_TRIES - 1


async def test_the_report_as_a_close_begins_is_tried_once_and_never_stops_the_close(
    pauses: list[float],
) -> None:
    js = FlakyJetStream(failures=1)
    await notices.report_closing(js, CLOSED)  # type: ignore[arg-type]
    assert [try_[2]["Nats-Msg-Id"] for try_ in js.tries] == ["ev-1"]
    assert pauses == []
