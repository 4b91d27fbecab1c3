"""A delivery is answered once, ack or nak, and counted under its outcome's metric label.

One that may have lapsed (a stretch without an in-progress ack reaching NATS as long
as the bound) is not answered at all, and counted as `lapsed`.
"""

import asyncio

import nats.errors
import pytest
from prometheus_client import REGISTRY

from farm_agent.work.delivery import Delivery, DeliveryOutcome
from farm_agent.work.lapses import in_progress_interval, lapse_bound
from farm_core.queue import Priority, task_subject
from tests.clock import MovedClock
from tests.helpers import assert_eventually


class FakeClient:
    """The NATS client a message came through: connected or reconnecting."""

    is_connected = True


class FakeMessage:
    """A JetStream message that notes how it was answered."""

    subject = task_subject("", Priority.NORMAL)

    def __init__(self, fails: bool = False) -> None:
        self.answers: list[tuple[str, float | None]] = []
        self.tries = 0
        self._fails = fails
        self.client = FakeClient()

    async def term(self) -> None:
        self._answer("term", None)

    async def ack(self) -> None:
        self._answer("ack", None)

    async def nak(self, delay: float | None = None) -> None:
        self._answer("nak", delay)

    async def in_progress(self) -> None:
        self._answer("in_progress", None)

    def _answer(self, verb: str, delay: float | None) -> None:
        self.tries += 1
        if self._fails:
            raise nats.errors.TimeoutError
        self.answers.append((verb, delay))


def counted(outcome: DeliveryOutcome) -> float:
    """agent_tasks_total with this outcome's status label, as Prometheus scrapes it."""
    return REGISTRY.get_sample_value("agent_tasks_total", {"status": outcome.value}) or 0.0


def delivery(
    message: FakeMessage, redeliveries: list[tuple[str, float]], clock: MovedClock | None = None
) -> Delivery:
    """The agent's delivery of `message` (attempt 3): it lapses after 20 s on `clock`
    without an in-progress ack reaching NATS (never without a clock: that one stands still).
    """

    def expect_redelivery(subject: str, delay: float) -> None:
        redeliveries.append((subject, delay))

    return Delivery(
        message,  # type: ignore[arg-type]
        "task-1",
        expect_redelivery,
        connected=lambda: message.client.is_connected,
        lapse_after_seconds=20,
        attempt_of=lambda: 3,
        clock=clock or MovedClock(1000.0),
    )


def test_the_outcomes_keep_their_metric_labels() -> None:
    # Dashboards and alerts select agent_tasks_total by these values.
    assert sorted(DeliveryOutcome) == sorted(
        [
            "succeeded",
            "failed",
            "cancelled",
            "retried",
            "waited",
            "requeued",
            "ended",
            "moved",
            "lapsed",
        ]
    )


async def test_an_ack_is_sent_and_counted_once() -> None:
    message = FakeMessage()
    redeliveries: list[tuple[str, float]] = []
    before = counted(DeliveryOutcome.SUCCEEDED)
    answered = delivery(message, redeliveries)

    await answered.ack(DeliveryOutcome.SUCCEEDED)
    await answered.ack(DeliveryOutcome.SUCCEEDED)
    await answered.hand_back_after(5, DeliveryOutcome.RETRIED)

    assert message.answers == [("ack", None)]
    assert redeliveries == []
    assert counted(DeliveryOutcome.SUCCEEDED) == before + 1


@pytest.mark.parametrize(("delay", "sent"), [(2.5, 2.5), (0, None)])
async def test_a_hand_back_naks_with_its_delay_and_expects_the_task_then(
    delay: float, sent: float | None
) -> None:
    message = FakeMessage()
    redeliveries: list[tuple[str, float]] = []
    before = counted(DeliveryOutcome.WAITED)

    await delivery(message, redeliveries).hand_back_after(delay, DeliveryOutcome.WAITED)

    assert message.answers == [("nak", sent)]
    assert redeliveries == [(FakeMessage.subject, delay)]
    assert counted(DeliveryOutcome.WAITED) == before + 1


async def test_an_answer_nats_refuses_is_still_counted_and_not_retried() -> None:
    message = FakeMessage(fails=True)
    redeliveries: list[tuple[str, float]] = []
    before = counted(DeliveryOutcome.FAILED)
    answered = delivery(message, redeliveries)

    await answered.ack(DeliveryOutcome.FAILED)
    await answered.ack(DeliveryOutcome.FAILED)

    assert counted(DeliveryOutcome.FAILED) == before + 1


async def test_in_progress_acks_go_every_interval_from_the_first_until_the_block_ends() -> None:
    message = FakeMessage()
    redeliveries: list[tuple[str, float]] = []
    kept = delivery(message, redeliveries)

    async with kept.kept_in_progress(0.05):
        assert message.answers == []  # none before one interval has passed
        await assert_eventually(lambda: len(message.answers) >= 2, message="fewer than 2 acks")
    sent = len(message.answers)
    # Showing that no ack follows the block means letting a few intervals pass.
    await asyncio.sleep(0.2)

    assert message.answers == [("in_progress", None)] * sent
    assert redeliveries == []


async def test_a_failed_in_progress_ack_does_not_stop_the_next_ones() -> None:
    message = FakeMessage(fails=True)

    async with delivery(message, []).kept_in_progress(0.02):
        await assert_eventually(lambda: message.tries >= 3, message="the acks stopped")


async def tick(delivery: Delivery) -> None:
    """One in-progress round, as kept_in_progress runs it."""
    await delivery._in_progress()


def test_the_bound_is_the_ack_wait_less_one_interval_of_a_third_of_it_at_most() -> None:
    assert (in_progress_interval(30, 10), lapse_bound(30, 10)) == (10, 20)
    assert (in_progress_interval(2, 0.5), lapse_bound(2, 0.5)) == (0.5, 1.5)
    # In-progress acks set to go less often than the ack wait would let every task lapse.
    assert (in_progress_interval(6, 30), lapse_bound(6, 30)) == (2, 4)


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param([15, "tick", 15, "tick", 15], id="every-gap-under-the-bound"),
        pytest.param([19.9], id="settled-before-the-bound"),
    ],
)
async def test_a_delivery_kept_in_progress_is_answered(steps: list[float | str]) -> None:
    message, clock = FakeMessage(), MovedClock(1000.0)
    redeliveries: list[tuple[str, float]] = []
    before = counted(DeliveryOutcome.RETRIED)
    answered = delivery(message, redeliveries, clock)
    for step in steps:
        if step == "tick":
            await tick(answered)
        else:
            clock.now += float(step)

    await answered.hand_back_after(5, DeliveryOutcome.RETRIED)

    assert message.answers[-1] == ("nak", 5)
    assert redeliveries == [(FakeMessage.subject, 5)]
    assert counted(DeliveryOutcome.RETRIED) == before + 1


@pytest.mark.parametrize(
    ("steps", "gap"),
    [
        # The loop was blocked (or the process paused) between two ticks.
        pytest.param([5, "tick", 25, "tick", 5], 25, id="a-late-tick"),
        # Nothing reached NATS since the last tick: past the bound at settle time.
        pytest.param([10, "tick", 21], 21, id="past-the-bound-at-settle"),
        # Ticks sent while nats-py reconnects are buffered, not received.
        pytest.param([10, "tick", 10, "offline", 15, "online", 5], 25, id="disconnected"),
    ],
)
async def test_a_delivery_that_may_have_lapsed_is_not_answered_but_counted_lapsed(
    steps: list[float | str], gap: float, caplog: pytest.LogCaptureFixture
) -> None:
    message, clock = FakeMessage(), MovedClock(1000.0)
    redeliveries: list[tuple[str, float]] = []
    before = counted(DeliveryOutcome.LAPSED)
    succeeded = counted(DeliveryOutcome.SUCCEEDED)
    answered = delivery(message, redeliveries, clock)
    for step in steps:
        if step in ("tick", "offline", "online"):
            message.client.is_connected = step != "offline"
            await tick(answered)
        else:
            clock.now += float(step)

    await answered.ack(DeliveryOutcome.SUCCEEDED)
    await answered.hand_back_after(5, DeliveryOutcome.RETRIED)
    await answered.refuse()

    assert [verb for verb, _ in message.answers if verb != "in_progress"] == []
    assert redeliveries == []
    assert counted(DeliveryOutcome.LAPSED) == before + 1
    assert counted(DeliveryOutcome.SUCCEEDED) == succeeded
    assert f"task task-1 attempt 3 went {gap:.1f} s without" in caplog.text


async def test_a_failed_in_progress_ack_does_not_count_as_reached() -> None:
    message, clock = FakeMessage(fails=True), MovedClock(1000.0)
    answered = delivery(message, [], clock)
    for _ in range(3):
        clock.now += 10
        await tick(answered)

    await answered.ack(DeliveryOutcome.SUCCEEDED)

    assert message.answers == []
    assert message.tries == 3
