"""The RateGate the CLI's bulk calls share: one rate limit holds back every thread."""

import threading

import pytest

from farm_cli.retries import RateGate, Stopped
from tests.clock import MovedClock


def gate_and_sleeps() -> tuple[RateGate, MovedClock, list[float]]:
    clock = MovedClock()
    sleeps: list[float] = []
    return RateGate(clock, sleeps.append), clock, sleeps


def test_a_held_gate_waits_out_the_rest_of_its_hold_and_an_open_one_not_at_all() -> None:
    gate, clock, sleeps = gate_and_sleeps()
    gate.wait()
    gate.hold(2.0)
    clock.now += 0.5
    gate.wait()
    clock.now += 1.5
    gate.wait()
    assert sleeps == [1.5]


def test_a_shorter_hold_does_not_open_the_gate_sooner() -> None:
    gate, _, sleeps = gate_and_sleeps()
    gate.hold(3.0)
    gate.hold(1.0)
    gate.wait()
    assert sleeps == [3.0]


def test_a_stopped_gate_ends_a_wait_under_way_and_refuses_later_ones() -> None:
    # What Ctrl-C does to a command's threads: none waits out the Retry-After.
    with RateGate() as gate:
        gate.hold(3600.0)
        ended: list[BaseException] = []

        def wait() -> None:
            try:
                gate.wait()
            except Stopped as stopped:
                ended.append(stopped)

        waiter = threading.Thread(target=wait)
        waiter.start()
    waiter.join(timeout=30)

    assert not waiter.is_alive()
    assert [type(error) for error in ended] == [Stopped]
    with pytest.raises(Stopped):
        gate.sleep(3600.0)
