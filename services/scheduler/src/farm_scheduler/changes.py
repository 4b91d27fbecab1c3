"""What follows a committed change of a task: metrics, watchers woken, its dead letter sent."""

from farm_scheduler import metrics
from farm_scheduler.publisher import TaskPublisher
from farm_scheduler.store import TaskChange
from farm_scheduler.watch import TaskWatch


class ChangeReporter:
    """Tells everyone concerned that a task has changed, once the change is committed."""

    def __init__(self, watch: TaskWatch, publisher: TaskPublisher) -> None:
        self._watch = watch
        self._publisher = publisher

    async def report(self, change: TaskChange) -> None:
        """Counts the change, wakes its watchers, and sends a new failure to FARM_DEAD.

        A dead letter NATS does not take now is left to the republisher.
        """
        metrics.record_change(change)
        await self._watch.announce(change.after.id)
        if change.after.dead_letter_pending and not change.before.dead_letter_pending:
            await self._publisher.publish_dead_letter(change.after)
