"""An event JetStream does not take at once is sent again, the same event, for a while."""

from typing import Any, cast

import nats.errors
import pytest
from nats.js import JetStreamContext

from farm.tasks.v1 import tasks_pb2
from farm_agent.work import events
from farm_agent.work.events import EventReporter, ReportFailed


class LeaderlessStream:
    """A JetStream context whose stream answers nothing for its first `silent` publishes."""

    def __init__(self, silent: int) -> None:
        self.silent = silent
        self.message_ids: list[str] = []

    async def publish(self, subject: str, payload: bytes, **options: Any) -> None:
        self.message_ids.append(options["headers"]["Nats-Msg-Id"])
        if len(self.message_ids) <= self.silent:
            raise nats.errors.NoRespondersError


def reporter(stream: LeaderlessStream) -> EventReporter:
    return EventReporter(cast(JetStreamContext, stream), "agent-1", 1 << 20)


@pytest.fixture(autouse=True)
def short_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "REPORT_RETRY_FIRST_PAUSE_SECONDS", 0.01)
    monkeypatch.setattr(events, "REPORT_RETRY_MAX_PAUSE_SECONDS", 0.02)


async def test_an_event_is_sent_again_until_the_stream_takes_it() -> None:
    stream = LeaderlessStream(silent=3)

    event = await reporter(stream).report("t1", tasks_pb2.TASK_STATUS_RUNNING, 1, grant="g")

    assert len(stream.message_ids) == 4
    assert set(stream.message_ids) == {event.event_id}


async def test_a_stream_that_stays_silent_fails_the_report_after_the_retry_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(events, "REPORT_RETRY_SECONDS", 0.1)
    stream = LeaderlessStream(silent=1000)

    with pytest.raises(ReportFailed, match="RUNNING event of task t1"):
        await reporter(stream).report("t1", tasks_pb2.TASK_STATUS_RUNNING, 1, grant="g")
    assert 1 < len(stream.message_ids) < 20
