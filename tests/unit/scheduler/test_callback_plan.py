"""When a failed callback is tried again, what its attempts add up to, and callbackUrl checks."""

import datetime as dt

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_core.egress.address_policy import AddressPolicy, FarmService
from farm_core.egress.allowlist import AllowList
from farm_core.errors import InvalidArgument
from farm_scheduler.callbacks.attempts import CallbackAttempt, RetryPolicy, callback_status
from farm_scheduler.callbacks.sender import refusal_of_literal
from farm_scheduler.validation import validate_spec

ENDED = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
POLICY = RetryPolicy(first_seconds=1, max_seconds=8, window_seconds=60)


def test_waits_double_up_to_the_cap() -> None:
    waits = [
        (POLICY.next_time(failures, ENDED, ENDED) or ENDED) - ENDED for failures in range(1, 6)
    ]
    assert [wait.total_seconds() for wait in waits] == [1, 2, 4, 8, 8]


def test_no_retry_starts_after_the_window() -> None:
    assert POLICY.next_time(1, ENDED, ENDED + dt.timedelta(seconds=58)) is not None
    assert POLICY.next_time(1, ENDED, ENDED + dt.timedelta(seconds=59.5)) is None


def test_status_follows_the_attempts() -> None:
    failed = CallbackAttempt(1, ENDED, 500, "the receiver answered HTTP 500")
    delivered = CallbackAttempt(2, ENDED, 200)
    assert callback_status("", False, ()) == tasks_pb2.CALLBACK_STATUS_UNSPECIFIED
    assert callback_status("https://a.test/", True, (failed,)) == tasks_pb2.CALLBACK_STATUS_PENDING
    assert (
        callback_status("https://a.test/", False, (failed, delivered))
        == tasks_pb2.CALLBACK_STATUS_DELIVERED
    )
    assert callback_status("https://a.test/", False, (failed,)) == tasks_pb2.CALLBACK_STATUS_FAILED


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/", "http://10.1.2.3/", "http://169.254.169.254/latest", "http://[::1]/"],
)
def test_private_addresses_are_refused_unless_allowed(url: str) -> None:
    assert refusal_of_literal(url, AddressPolicy()) is not None
    opened = AddressPolicy(AllowList.parse("127.0.0.0/8,10.0.0.0/8,169.254.0.0/16,::1/128"))
    assert refusal_of_literal(url, opened) is None


def test_farm_ports_are_refused_even_where_allowed() -> None:
    policy = AddressPolicy(
        AllowList.parse("127.0.0.0/8"), frozenset({FarmService("127.0.0.1", 8080)})
    )
    refusal = refusal_of_literal("http://127.0.0.1:8080/hook", policy)
    assert refusal is not None and refusal.reason == "farm_service"
    assert refusal_of_literal("http://127.0.0.1:8081/hook", policy) is None
    assert refusal_of_literal("https://example.com/hook", policy) is None


@pytest.mark.parametrize("url", ["ftp://example.com/", "not a url", "http:///path"])
def test_a_bad_callback_url_names_the_field(url: str) -> None:
    spec = tasks_pb2.TaskSpec(
        url="https://example.com", screenshot=tasks_pb2.ScreenshotOptions(), callback_url=url
    )
    with pytest.raises(InvalidArgument) as raised:
        validate_spec(spec, max_attempts_cap=10, default_timeout_ms=30000)
    assert raised.value.field == "callbackUrl"
