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
        """Counts the change, wakes its watchers, sends a dead letter.

        A new cached result was announced before the commit (TaskStore). A dead letter
        NATS does not take now is left to the republisher.
        """
        metrics.record_change(change)
        after = change.after
        await self._watch.announce(after.id, after)
        if after.dead_letter_pending and not change.before.dead_letter_pending:
            await self._publisher.publish_dead_letter(change.after)
