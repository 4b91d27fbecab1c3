"""One JetStream delivery of a task: kept in progress while worked on, then answered once.

The answer is an ack (the task is done with here) or a nak with a delay (the task
comes again then); either way it is counted once in `agent_tasks_total` under the
delivery's outcome. A delivery that may have lapsed (lapses.py) is not answered at
all, and counted as `lapsed`: the newest delivery of the message decides.
"""

import contextlib
import enum
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import nats.errors
from nats.aio.msg import Msg
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from farm_agent import metrics
from farm_agent.work.lapses import Clock, ProgressWatch, boottime
from farm_core.metric_series import start_at_zero
from farm_core.periodic import Periodic

log = logging.getLogger(__name__)

ExpectRedelivery = Callable[[str, float], None]
"""Told that the message on a subject comes back after a delay, so it is fetched then."""


class DeliveryOutcome(enum.StrEnum):
    """How a delivery ended, valued as the `status` label of `agent_tasks_total`."""

    SUCCEEDED = "succeeded"
    """Acked: the task succeeded."""
    FAILED = "failed"
    """Acked: the task failed for good."""
    CANCELLED = "cancelled"
    """Acked: the task was cancelled."""
    RETRIED = "retried"
    """Nakked: a failed attempt is tried again after a backoff."""
    WAITED = "waited"
    """Nakked: handed back to wait, without using an attempt."""
    REQUEUED = "requeued"
    """Nakked: cut off by the agent's shutdown, or its event could not be published."""
    ENDED = "ended"
    """Acked unrun: the scheduler marked the task ended otherwise (failed elsewhere)."""
    MOVED = "moved"
    """Acked unrun: the scheduler moved the task from this region's queue to any region's."""
    LAPSED = "lapsed"
    """Not answered: JetStream may have redelivered the message meanwhile (lapses.py)."""


# The `task.attempt` span's error status, by the outcomes that are an attempt's failure.
ATTEMPT_FAILED = {
    DeliveryOutcome.FAILED: "the attempt failed, and the task with it",
    DeliveryOutcome.RETRIED: "the attempt failed; the task is tried again",
}


start_at_zero(metrics.tasks_total, status=DeliveryOutcome)


class Delivery:
    """A delivered task message and its one answer, ack or nak, unless it may have lapsed.

    `connected`: whether the NATS connection the message came through is up now.
    `lapse_after_seconds`: the gap without an in-progress ack reaching NATS past which
    the delivery counts as lapsed (lapses.lapse_bound); `attempt_of` names the attempt
    in the log line of a lapse.
    """

    def __init__(
        self,
        message: Msg,
        task_id: str,
        expect_redelivery: ExpectRedelivery,
        *,
        connected: Callable[[], bool],
        lapse_after_seconds: float,
        attempt_of: Callable[[], int],
        clock: Clock = boottime,
    ) -> None:
        self._message = message
        self._task_id = task_id
        self._expect_redelivery = expect_redelivery
        self._connected = connected
        self._attempt_of = attempt_of
        self._answered = False
        self._started_at = time.monotonic()
        self._progress = ProgressWatch(lapse_after_seconds, clock)

    def elapsed_seconds(self) -> float:
        """Seconds since the agent took the delivery."""
        return time.monotonic() - self._started_at

    def may_have_lapsed(self) -> bool:
        """Whether JetStream may have delivered the message again meanwhile (lapses.py)."""
        return self._progress.lapse() is not None

    async def ack(self, outcome: DeliveryOutcome) -> None:
        """Acks the message: the task is done with here and is not delivered again."""
        await self._answer(outcome, "ack", self._message.ack)

    async def hand_back_after(self, delay_seconds: float, outcome: DeliveryOutcome) -> None:
        """Naks the message, so that the task is delivered again after `delay_seconds`."""

        async def nak() -> None:
            await self._message.nak(delay=delay_seconds or None)
            self._expect_redelivery(self._message.subject, delay_seconds)

        await self._answer(outcome, "nak", nak)

    async def refuse(self) -> None:
        """Terminates a message that holds no task: it is never delivered again."""
        if self._lapse("term") is None:
            await self._message.term()

    @contextlib.asynccontextmanager
    async def kept_in_progress(self, every_seconds: float) -> AsyncIterator[None]:
        """Tells JetStream every `every_seconds` while the block runs that the task is in work.

        So it is not redelivered meanwhile; the first in-progress ack goes after one interval.
        """
        acks = Periodic(f"in-progress-{self._task_id}", self._in_progress, every_seconds)
        acks.start()
        try:
            yield
        finally:
            await acks.cancel()

    async def _in_progress(self) -> None:
        # nats-py buffers what is published while it reconnects: such an ack may come
        # after the server redelivered the message, so it does not count as reached.
        connected = self._connected()
        try:
            await self._message.in_progress()
        except nats.errors.Error as error:
            log.warning("in-progress ack of task %s failed: %s", self._task_id, error)
            return
        if connected:
            self._progress.reached()

    def _lapse(self, verb: str) -> float | None:
        """The longest gap without progress reaching NATS, if the delivery may have lapsed."""
        gap = self._progress.lapse()
        if gap is not None:
            log.warning(
                "task %s attempt %d went %.1f s without an in-progress ack reaching NATS, "
                "so its message may have been redelivered: its %s is withheld, the newest "
                "delivery settles it",
                self._task_id,
                self._attempt_of(),
                gap,
                verb,
            )
        return gap

    async def _answer(
        self, outcome: DeliveryOutcome, verb: str, send: Callable[[], Awaitable[None]]
    ) -> None:
        if self._answered:
            return
        self._answered = True
        if self._lapse(verb) is not None:
            outcome = DeliveryOutcome.LAPSED
        else:
            try:
                await send()
            except nats.errors.Error as error:
                # The ack wait will expire and the task come again; its effects are idempotent.
                log.warning("could not %s task %s: %s", verb, self._task_id, error)
        span = trace.get_current_span()
        span.set_attribute("farm.outcome", outcome.value)
        if outcome in ATTEMPT_FAILED:
            # A trace view marks the delivery itself, not only the step under it that failed.
            span.set_status(Status(StatusCode.ERROR, ATTEMPT_FAILED[outcome]))
        metrics.tasks_total.labels(status=outcome.value).inc()
        metrics.task_duration_seconds.observe(self.elapsed_seconds())
