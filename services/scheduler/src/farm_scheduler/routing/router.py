"""Chooses the queue of a new task: its preferred region, or `any` when that region has no agent."""

import logging
from collections.abc import Collection, Sequence

from farm.tasks.v1 import tasks_pb2
from farm_core.queue import ANY_REGION
from farm_scheduler.routing.rules import RegionRule, preferred_region

log = logging.getLogger(__name__)


class RegionRouter:
    """The region rules and the regions that had a live agent at the last look."""

    def __init__(self, rules: Sequence[RegionRule]) -> None:
        self.rules = tuple(rules)
        self._live_regions: frozenset[str] | None = None

    @property
    def live_regions(self) -> frozenset[str] | None:
        """The regions with a live, undrained agent at the last look; None before the first."""
        return self._live_regions

    def saw_fleet(self, live_regions: Collection[str]) -> None:
        """Notes which regions have a live agent now (from the agents' heartbeats).

        A change is logged: until a region is seen, tasks that prefer it go to `any`.
        """
        seen = frozenset(live_regions)
        if seen != self._live_regions:
            log.info("regions with a live agent: %s", ", ".join(sorted(seen)) or "none")
        self._live_regions = seen

    def route(self, spec: tasks_pb2.TaskSpec) -> str:
        """The `routed_region` of a new task of `spec`: "" unrouted, a region, or `any`.

        A preferred region known to have no agent gives `any` at once; one not known
        yet (before the first look at the fleet) is tried, the fallback moves it later.
        """
        region = preferred_region(self.rules, spec)
        if region and self._live_regions is not None and region not in self._live_regions:
            return ANY_REGION
        return region
