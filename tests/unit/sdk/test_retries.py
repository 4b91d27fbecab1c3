"""The SDK's retries (UNAVAILABLE, rate limits; one idempotency key per task); a watch's end."""

import asyncio
from typing import Unpack

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tenacity import RetryCallState

import browserfarm
from browserfarm.calls import RetryWait
from tests.unit.sdk.conftest import Refusals

UNAVAILABLE = (grpc.StatusCode.UNAVAILABLE, "")


def client(url: str, **settings: Unpack[browserfarm.ClientSettings]) -> browserfarm.Client:
    settings.setdefault("backoff_seconds", 0.01)
    return browserfarm.Client(url, "bf_key", **settings)


def test_a_submit_retried_after_unavailable_carries_one_idempotency_key(
    refusing_farm: tuple[str, Refusals], refusals: Refusals
) -> None:
    refusals.statuses[:] = [UNAVAILABLE, UNAVAILABLE]
    with client(refusing_farm[0]) as farm:
        task = farm.submit({"url": "https://example.com", "content": {}})
    assert task.status is browserfarm.TaskStatus.QUEUED
    keys = {spec.idempotency_key for spec in refusals.specs}
    assert len(refusals.specs) == 3
    assert len(keys) == 1 and keys != {""}


def test_each_task_gets_its_own_key_and_a_given_key_is_kept(
    refusing_farm: tuple[str, Refusals], refusals: Refusals
) -> None:
    spec = {"url": "https://example.com", "content": {}}
    with client(refusing_farm[0]) as farm:
        farm.submit(spec)
        farm.run(spec)
        farm.submit({**spec, "idempotencyKey": "nightly-1"})
    first, second, given = (sent.idempotency_key for sent in refusals.specs)
    assert first and second and first != second
    assert given == "nightly-1"
    assert "idempotencyKey" not in spec


def test_unavailable_is_raised_after_max_attempts(
    refusing_farm: tuple[str, Refusals], refusals: Refusals
) -> None:
    refusals.statuses[:] = [UNAVAILABLE] * 3
    with client(refusing_farm[0], max_attempts=2) as farm, pytest.raises(browserfarm.Unavailable):
        farm.run({"url": "https://example.com", "content": {}})
    assert len(refusals.specs) == 2


def test_a_rate_limit_is_retried_and_raised_with_its_retry_after(
    refusing_farm: tuple[str, Refusals], refusals: Refusals
) -> None:
    limited = (grpc.StatusCode.RESOURCE_EXHAUSTED, "0")
    refusals.statuses[:] = [limited, limited, limited]
    with client(refusing_farm[0], max_attempts=2) as farm:
        with pytest.raises(browserfarm.RateLimited) as raised:
            farm.submit({"url": "https://example.com", "content": {}})
        assert raised.value.retry_after == 0
        assert farm.submit({"url": "https://example.com", "content": {}}).id


def test_a_quota_is_raised_at_once(refusing_farm: tuple[str, Refusals], refusals: Refusals) -> None:
    refusals.statuses[:] = [(grpc.StatusCode.RESOURCE_EXHAUSTED, "")]
    with client(refusing_farm[0]) as farm, pytest.raises(browserfarm.QuotaExceeded):
        farm.submit({"url": "https://example.com", "content": {}})
    assert len(refusals.specs) == 1


def test_a_rate_limit_longer_than_the_client_waits_is_raised_at_once(
    refusing_farm: tuple[str, Refusals], refusals: Refusals
) -> None:
    refusals.statuses[:] = [(grpc.StatusCode.RESOURCE_EXHAUSTED, "120")]
    with client(refusing_farm[0]) as farm, pytest.raises(browserfarm.RateLimited) as raised:
        farm.submit({"url": "https://example.com", "content": {}})
    assert raised.value.retry_after == 120
    assert len(refusals.specs) == 1


def test_every_call_carries_the_key_and_the_current_trace(
    refusing_farm: tuple[str, Refusals],
    refusals: Refusals,
    recorded_spans: InMemorySpanExporter,
) -> None:
    with client(refusing_farm[0]) as farm:
        farm.submit({"url": "https://example.com", "content": {}})
        with trace.get_tracer("test").start_as_current_span("caller") as span:
            # The call runs on the client's own thread, which sees the caller's context.
            farm.submit({"url": "https://example.com", "content": {}})
    untraced, traced = refusals.metadata
    assert untraced["authorization"] == "Bearer bf_key"
    assert "traceparent" not in untraced
    trace_id = trace.format_trace_id(span.get_span_context().trace_id)
    assert traced["traceparent"].split("-")[1] == trace_id


def test_the_wait_is_a_doubling_backoff_but_never_shorter_than_retry_after() -> None:
    wait = RetryWait(first_seconds=0.5, max_seconds=4.0)

    def after(attempt: int, error: BaseException) -> float:
        # The wait reads only the attempt and its outcome, never the retrying object or the call.
        state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = attempt
        state.set_exception((type(error), error, None))
        return wait(state)

    unavailable = browserfarm.Unavailable("down")
    assert [after(n, unavailable) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert after(1, browserfarm.RateLimited("slow down", retry_after=3)) == 3
    assert after(5, browserfarm.RateLimited("slow down", retry_after=1)) == 4.0


def test_a_client_closed_twice_is_closed_once(refusing_farm: tuple[str, Refusals]) -> None:
    farm = client(refusing_farm[0])
    farm.close()
    farm.close()


async def test_wait_ends_the_watch_it_read_the_end_from(
    refusing_farm: tuple[str, Refusals], refusals: Refusals
) -> None:
    # The fake sends the final event and keeps the stream open, as a farm whose status
    # frame has not arrived yet: wait() answers from the event and must end the call.
    async with browserfarm.AsyncClient(refusing_farm[0], "bf_key") as farm:
        task = await farm.wait("tsk_1")
        assert task.status is browserfarm.TaskStatus.SUCCEEDED
        assert await asyncio.to_thread(refusals.watch_ended.wait, 20)
