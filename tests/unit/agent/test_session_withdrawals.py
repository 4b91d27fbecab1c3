"""Withdrawn session openings are remembered for a while, then forgotten."""

from farm_agent.sessions.withdrawals import Withdrawals


class MovedClock:
    """A clock that stands still until the test moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_withdrawal_is_remembered_for_its_tenant_until_it_is_kept_no_longer() -> None:
    clock = MovedClock()
    withdrawals = Withdrawals(clock, keep_seconds=60)
    withdrawals.add("ses_0000000000000001", "acme")

    assert ("ses_0000000000000001", "acme") in withdrawals
    assert ("ses_0000000000000001", "other") not in withdrawals
    assert ("ses_0000000000000002", "acme") not in withdrawals
    clock.now = 59
    assert ("ses_0000000000000001", "acme") in withdrawals
    clock.now = 61
    assert ("ses_0000000000000001", "acme") not in withdrawals


def test_the_oldest_withdrawals_go_first_past_the_limit() -> None:
    withdrawals = Withdrawals(MovedClock(), max_kept=2)
    for number in range(3):
        withdrawals.add(f"ses_000000000000000{number}", "acme")

    assert ("ses_0000000000000000", "acme") not in withdrawals
    assert ("ses_0000000000000001", "acme") in withdrawals
    assert ("ses_0000000000000002", "acme") in withdrawals
