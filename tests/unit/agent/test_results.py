"""Pure parts of shaping results: extract rules, JSON values, text cuts, upload retries, events."""

import asyncio
import datetime as dt
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import cut_utf8, json_value
from farm_agent.errors import TaskFailure
from farm_agent.work.events import EventReporter
from farm_agent.work.uploader import RetryPolicy
from farm_core.extract_rules import ExtractField
from farm_core.queue import event_subject
from farm_core.task_errors import ErrorCode


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("h1", ExtractField("h1", None, every_match=False)),
        ("a@href", ExtractField("a", "href", every_match=False)),
        ("li[]", ExtractField("li", None, every_match=True)),
        ("a.next@data-id[]", ExtractField("a.next", "data-id", every_match=True)),
        ('a[href^="mailto:x@y"]', ExtractField('a[href^="mailto:x@y"]', None, every_match=False)),
    ],
)
def test_extract_rules_parse_into_selector_attribute_and_list(
    rule: str, expected: ExtractField
) -> None:
    assert ExtractField.parse(rule) == expected


def test_json_value_keeps_json_and_refuses_what_is_not() -> None:
    value = json_value({"a": [1, "two", None, True]}, "script", 1000)
    assert json_format.MessageToDict(value) == {"a": [1, "two", None, True]}
    for number in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(TaskFailure) as caught:
            json_value({"ratio": [number]}, "script", 1000)
        assert caught.value.code is ErrorCode.SCRIPT_FAILED
        assert caught.value.message == (
            "script: the result is not JSON: it holds NaN, Infinity or -Infinity, which JSON "
            "has no form for (return null or a string in their place)"
        )


def test_json_value_over_the_limit_is_result_too_large() -> None:
    with pytest.raises(TaskFailure) as caught:
        json_value(["x" * 100], "extract", 50)
    assert caught.value.code is ErrorCode.RESULT_TOO_LARGE


def test_cut_utf8_never_splits_a_character() -> None:
    assert cut_utf8("héllo".encode(), 2) == "h"
    assert cut_utf8("héllo".encode(), 3) == "hé"
    assert cut_utf8(b"abc", 10) == "abc"


class Storage:
    """Answers every upload attempt with the same gRPC error; counts the attempts."""

    def __init__(self, code: grpc.StatusCode) -> None:
        self.code = code
        self.attempts = 0

    async def upload(self) -> None:
        self.attempts += 1
        raise grpc.aio.AioRpcError(self.code, grpc.aio.Metadata(), grpc.aio.Metadata(), "(test)")


async def upload_with_retries(policy: RetryPolicy, storage: Storage) -> list[float]:
    """Runs the policy's retry loop around `storage`; the waits it slept."""
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await policy.retrying(lambda _: None, sleep)(storage.upload)
    assert caught.value.code() == storage.code
    return waits


async def test_upload_retry_delays_double_and_are_capped_and_bounded() -> None:
    policy = RetryPolicy(attempts=6, first_delay_seconds=0.5, max_delay_seconds=3.0)
    storage = Storage(grpc.StatusCode.UNAVAILABLE)
    assert await upload_with_retries(policy, storage) == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert storage.attempts == 6


async def test_only_unavailable_storage_is_retried() -> None:
    storage = Storage(grpc.StatusCode.PERMISSION_DENIED)
    assert await upload_with_retries(RetryPolicy(), storage) == []
    assert storage.attempts == 1


class RecordingJetStream:
    """Keeps what is published, as JetStream would store it."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, dict[str, str]]] = []

    async def publish(self, subject: str, payload: bytes, **options: Any) -> None:
        self.published.append((subject, payload, options["headers"]))


async def test_an_event_carries_a_unique_id_as_its_message_id() -> None:
    js = RecordingJetStream()
    reporter = EventReporter(js, agent_id="agent-1", max_payload_bytes=1 << 20)  # type: ignore[arg-type]
    first = await reporter.report("t1", tasks_pb2.TASK_STATUS_RUNNING, 2, grant="g")
    second = await reporter.report("t1", tasks_pb2.TASK_STATUS_RUNNING, 2, grant="g")
    (subject, payload, headers), _ = js.published
    assert subject == event_subject("t1", "agent-1")
    assert headers == {"Nats-Msg-Id": first.event_id}
    assert first.event_id != second.event_id
    event = queue_pb2.AgentEvent.FromString(payload)
    assert (event.task_id, event.agent_id, event.attempt) == ("t1", "agent-1", 2)
    assert event.time.seconds > 0


async def test_an_event_too_big_for_nats_has_its_text_cut() -> None:
    js = RecordingJetStream()
    reporter = EventReporter(js, agent_id="a", max_payload_bytes=2000)  # type: ignore[arg-type]
    result = tasks_pb2.TaskResult(text="x" * 5000, title="T")
    await reporter.report("t", tasks_pb2.TASK_STATUS_SUCCEEDED, 1, grant="g", result=result)
    [(_, payload, headers)] = js.published
    # NATS counts the headers ("NATS/1.0\r\n", "name: value\r\n" each, "\r\n") too.
    headers_size = 12 + sum(len(name) + len(value) + 4 for name, value in headers.items())
    assert len(payload) + headers_size <= 2000
    parsed = queue_pb2.AgentEvent.FromString(payload)
    assert parsed.result.title == "T"
    assert 1500 < len(parsed.result.text) < 2000


async def test_a_json_result_too_big_for_nats_is_result_too_large() -> None:
    reporter = EventReporter(RecordingJetStream(), agent_id="a", max_payload_bytes=500)  # type: ignore[arg-type]
    result = tasks_pb2.TaskResult(json=json_value(["y" * 1000], "script", 10_000))
    with pytest.raises(TaskFailure) as caught:
        await reporter.report("t", tasks_pb2.TASK_STATUS_SUCCEEDED, 1, grant="g", result=result)
    assert caught.value.code is ErrorCode.RESULT_TOO_LARGE


async def test_upload_retries_last_the_outage_window_not_a_count_of_tries() -> None:
    policy = RetryPolicy(outage_seconds=0.5, first_delay_seconds=0.01, max_delay_seconds=0.02)
    storage = Storage(grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(grpc.aio.AioRpcError):
        await policy.retrying(lambda _: None)(storage.upload)
    assert storage.attempts > 5


async def test_upload_retries_stop_at_the_tasks_deadline() -> None:
    policy = RetryPolicy(outage_seconds=3600, first_delay_seconds=0.01, max_delay_seconds=0.02)
    storage = Storage(grpc.StatusCode.UNAVAILABLE)
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.3)
    # Bounded: without the deadline the retries would go on for the hour.
    async with asyncio.timeout(5):
        with pytest.raises(grpc.aio.AioRpcError):
            await policy.retrying(lambda _: None, deadline=deadline)(storage.upload)
    assert policy.call_timeout(deadline) == 1.0  # The least a call gets.


def test_an_upload_given_up_says_what_bounded_its_retries() -> None:
    policy = RetryPolicy(outage_seconds=90)
    told = policy.outage_told(90.2, 23, None)
    assert told.startswith("; storage stayed unavailable through 23 tries over 90.2 s")
    assert "90 s is the longest outage a call waits out (FARM_AGENT_UPLOAD_OUTAGE_SECONDS)" in told
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    assert "the task's deadline" in policy.outage_told(10, 4, soon)
