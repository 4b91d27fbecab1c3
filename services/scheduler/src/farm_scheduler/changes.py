"""What follows a committed change of a task: metrics, watchers woken, its dead letter sent."""

from farm.tasks.v1 import tasks_pb2
from farm_scheduler import metrics
from farm_scheduler.cached_keys import CachedKeys
from farm_scheduler.publisher import TaskPublisher
from farm_scheduler.store import TaskChange
from farm_scheduler.watch import TaskWatch


class ChangeReporter:
    """Tells everyone concerned that a task has changed, once the change is committed."""

    def __init__(
        self, watch: TaskWatch, publisher: TaskPublisher, cached_keys: CachedKeys | None = None
    ) -> None:
        self._watch = watch
        self._publisher = publisher
        self._cached_keys = cached_keys

    async def report(self, change: TaskChange) -> None:
        """Counts the change, notes a new cached result, wakes its watchers, sends a dead letter.

        A dead letter NATS does not take now is left to the republisher.
        """
        metrics.record_change(change)
        after, succeeded = change.after, tasks_pb2.TASK_STATUS_SUCCEEDED
        if (
            self._cached_keys is not None
            and after.cache_key
            and not after.cached
            and after.state.status == succeeded
            and change.before.state.status != succeeded
        ):
            # Before the change's own announcement: a replica that hears that one (and
            # wakes a watcher, who may ask for the same spec) has heard this one first.
            await self._cached_keys.announce(after.tenant, after.cache_key)
        await self._watch.announce(after.id, after)
        if after.dead_letter_pending and not change.before.dead_letter_pending:
            await self._publisher.publish_dead_letter(change.after)
