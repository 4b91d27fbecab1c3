"""A delivery is answered once, ack or nak, and counted under its outcome's metric label."""

import asyncio

import nats.errors
import pytest
from prometheus_client import REGISTRY

from farm_agent.work.delivery import Delivery, DeliveryOutcome
from farm_core.queue import Priority, task_subject
from tests.helpers import assert_eventually


class FakeMessage:
    """A JetStream message that notes how it was answered."""

    subject = task_subject("", Priority.NORMAL)

    def __init__(self, fails: bool = False) -> None:
        self.answers: list[tuple[str, float | None]] = []
        self.tries = 0
        self._fails = fails

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


def delivery(message: FakeMessage, redeliveries: list[tuple[str, float]]) -> Delivery:
    def expect_redelivery(subject: str, delay: float) -> None:
        redeliveries.append((subject, delay))

    return Delivery(message, "task-1", expect_redelivery)  # type: ignore[arg-type]


def test_the_outcomes_keep_their_metric_labels() -> None:
    # Dashboards and alerts select agent_tasks_total by these values.
    assert sorted(DeliveryOutcome) == sorted(
        ["succeeded", "failed", "cancelled", "retried", "waited", "requeued", "moved"]
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
