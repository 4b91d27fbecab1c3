"""The circuit breaker's state machine: closed → open → half-open → closed or open again."""

import pytest

from farm_agent.errors import TaskFailure, http_error
from farm_agent.kv import is_valid_key, origin_key
from farm_agent.limits.circuit import (
    TRIAL_RECHECK_SECONDS,
    BreakerPolicy,
    Circuit,
    CircuitState,
    Outcome,
    outcome_of,
)
from farm_core.breakers import BreakerEntry, BreakerState, breaker_origin, read_breaker
from farm_core.task_errors import ErrorCode

POLICY = BreakerPolicy(failures_to_open=3, cooldown_seconds=30)
TRIAL_SECONDS = 60.0


def failed(times: int, start: Circuit | None = None, at: float = 100.0) -> Circuit:
    circuit = start or Circuit()
    for _ in range(times):
        circuit = circuit.record(Outcome.FAILURE, at, POLICY)
    return circuit


def test_a_closed_breaker_lets_tasks_through() -> None:
    circuit, admission = Circuit().admit(0, POLICY, TRIAL_SECONDS)
    assert admission.allowed
    assert not admission.is_trial
    assert circuit == Circuit()


def test_it_opens_after_n_consecutive_failures() -> None:
    assert failed(2).state is CircuitState.CLOSED
    opened = failed(3)
    assert opened.state is CircuitState.OPEN
    assert opened.opened_at == 100.0


def test_a_success_resets_the_count_of_consecutive_failures() -> None:
    circuit = failed(2).record(Outcome.SUCCESS, 100, POLICY)
    assert circuit == Circuit()
    assert failed(2, circuit).state is CircuitState.CLOSED


def test_neutral_outcomes_neither_count_nor_reset() -> None:
    circuit = failed(2).record(Outcome.NEUTRAL, 100, POLICY)
    assert circuit.failures == 2


def test_an_open_breaker_refuses_tasks_until_the_cooldown_ends() -> None:
    opened = failed(3)
    circuit, admission = opened.admit(110, POLICY, TRIAL_SECONDS)
    assert not admission.allowed
    assert admission.retry_after_seconds == pytest.approx(20)
    assert circuit == opened


def test_after_the_cooldown_one_trial_goes_through_half_open() -> None:
    circuit, trial = failed(3).admit(130, POLICY, TRIAL_SECONDS)
    assert trial.allowed and trial.is_trial
    assert circuit.state is CircuitState.HALF_OPEN
    _, other = circuit.admit(131, POLICY, TRIAL_SECONDS)
    assert not other.allowed
    assert 0 < other.retry_after_seconds <= TRIAL_RECHECK_SECONDS


def test_a_successful_trial_closes_the_breaker() -> None:
    half_open, trial = failed(3).admit(130, POLICY, TRIAL_SECONDS)
    closed = half_open.record(Outcome.SUCCESS, 131, POLICY, trial.trial_id)
    assert closed == Circuit()
    assert closed.admit(132, POLICY, TRIAL_SECONDS)[1].allowed


def test_a_failed_trial_opens_it_again_for_a_new_cooldown() -> None:
    half_open, trial = failed(3).admit(130, POLICY, TRIAL_SECONDS)
    reopened = half_open.record(Outcome.FAILURE, 135, POLICY, trial.trial_id)
    assert reopened.state is CircuitState.OPEN
    assert reopened.opened_at == 135
    assert not reopened.admit(160, POLICY, TRIAL_SECONDS)[1].allowed
    assert reopened.admit(165, POLICY, TRIAL_SECONDS)[1].is_trial


def test_a_trial_that_proves_nothing_lets_the_next_task_try() -> None:
    half_open, trial = failed(3).admit(130, POLICY, TRIAL_SECONDS)
    released = half_open.record(Outcome.NEUTRAL, 131, POLICY, trial.trial_id)
    assert released.state is CircuitState.HALF_OPEN
    assert released.admit(132, POLICY, TRIAL_SECONDS)[1].is_trial


def test_a_trial_whose_agent_died_lapses() -> None:
    half_open, _ = failed(3).admit(130, POLICY, TRIAL_SECONDS)
    _, later = half_open.admit(130 + TRIAL_SECONDS + 1, POLICY, TRIAL_SECONDS)
    assert later.is_trial


def test_while_not_closed_only_the_trial_counts() -> None:
    opened = failed(3)
    assert opened.record(Outcome.SUCCESS, 110, POLICY) == opened
    half_open, trial = opened.admit(130, POLICY, TRIAL_SECONDS)
    assert half_open.record(Outcome.FAILURE, 131, POLICY) == half_open
    assert half_open.record(Outcome.SUCCESS, 131, POLICY, "someone-else") == half_open
    assert half_open.record(Outcome.SUCCESS, 131, POLICY, trial.trial_id) == Circuit()


def test_a_breaker_survives_its_trip_through_the_bucket() -> None:
    half_open, _ = failed(3).admit(130, POLICY, TRIAL_SECONDS)
    assert Circuit.from_bytes(half_open.to_bytes()) == half_open


def test_garbage_in_the_bucket_is_not_a_breaker() -> None:
    with pytest.raises(ValueError, match="not a circuit breaker"):
        Circuit.from_bytes(b'{"state": "ajar"}')


@pytest.mark.parametrize(
    ("failure", "outcome"),
    [
        (None, Outcome.SUCCESS),
        (TaskFailure(ErrorCode.NAVIGATION_FAILED, "net::ERR_CONNECTION_REFUSED"), Outcome.FAILURE),
        (TaskFailure(ErrorCode.TIMEOUT, "navigation timed out"), Outcome.FAILURE),
        (http_error(503, "http://example.test/"), Outcome.FAILURE),
        (http_error(404, "http://example.test/"), Outcome.SUCCESS),
        (TaskFailure(ErrorCode.SELECTOR_NOT_FOUND, "no element"), Outcome.SUCCESS),
        (TaskFailure(ErrorCode.BROWSER_CRASHED, "renderer died"), Outcome.NEUTRAL),
        (TaskFailure(ErrorCode.INVALID_DEVICE, "no such device"), Outcome.NEUTRAL),
        # Refused by the agent before the host was asked: it says nothing of the host.
        (TaskFailure(ErrorCode.BLOCKED_URL, "url: 127.0.0.1 is loopback"), Outcome.NEUTRAL),
    ],
)
def test_retryable_navigation_failures_count_against_the_host(
    failure: TaskFailure | None, outcome: Outcome
) -> None:
    assert outcome_of(failure) is outcome


def test_the_scheduler_reads_the_breakers_the_agents_write() -> None:
    opened = Circuit(CircuitState.OPEN, failures=4, opened_at=1_700_000_000.5, trial_id="x")
    entry = read_breaker(origin_key("https://example.com/"), opened.to_bytes())
    assert entry == BreakerEntry("example.com:443", BreakerState.OPEN, 4, 1_700_000_000.5)
    own = read_breaker(origin_key("https://example.com/", "acme"), opened.to_bytes())
    assert own == BreakerEntry("example.com:443", BreakerState.OPEN, 4, 1_700_000_000.5, "acme")
    half_open = read_breaker("h", Circuit(CircuitState.HALF_OPEN).to_bytes())
    assert half_open.state is BreakerState.HALF_OPEN
    with pytest.raises(ValueError, match="not a breaker"):
        read_breaker("h", b'{"state": "melted"}')


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://Example.COM/path?q=1", "example.com=443"),
        ("https://example.com:443/", "example.com=443"),
        ("http://example.com/", "example.com=80"),
        ("http://example.com:80/", "example.com=80"),
        ("http://127.0.0.1:8080/", "127.0.0.1=8080"),
        ("http://127.0.0.1:9090/", "127.0.0.1=9090"),
        ("http://[::1]:9/", "__1=9"),
        ("http://example.com:99999/", ""),
        ("not a url", ""),
    ],
)
def test_a_breaker_guards_one_host_and_port_the_schemes_own_when_none_is_given(
    url: str, key: str
) -> None:
    assert origin_key(url) == key
    assert key == "" or is_valid_key(key)


def test_each_tenant_has_its_own_breaker_of_a_host() -> None:
    """A tenant's failures (a path that answers 500, a time limit too short) must not
    hold back another tenant's tasks for the same host."""
    mine, theirs = origin_key("https://example.com/", "a"), origin_key("https://example.com/", "b")
    assert mine == "a/example.com=443" and theirs == "b/example.com=443"
    assert is_valid_key(mine)
    assert breaker_origin(mine) == "example.com:443"
