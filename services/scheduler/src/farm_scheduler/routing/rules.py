"""Region rules: host patterns (`*.eu`, `*.com`) mapped to the region a task should run in.

Pure: parsing FARM_SCHEDULER_REGION_ROUTES and choosing a task's preferred region.
"""

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from farm.tasks.v1 import tasks_pb2
from farm_core.queue import ANY_REGION
from farm_scheduler.validation import REGION_PATTERN


@dataclass(frozen=True)
class RegionRule:
    """Tasks whose URL's host matches `pattern` (shell-style, case-insensitive) prefer `region`."""

    pattern: str
    region: str

    def matches(self, host: str) -> bool:
        """Whether `host` (lower case) matches the pattern."""
        return fnmatch.fnmatchcase(host, self.pattern)


def parse_rules(text: str) -> tuple[RegionRule, ...]:
    """The rules of `pattern=region` entries, comma-separated, in order; ValueError if malformed."""
    rules = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        pattern, equals, region = (part.strip() for part in entry.partition("="))
        if not equals or not pattern or not region:
            raise ValueError(f"{entry!r} is not of the form pattern=region (as *.eu=eu-central)")
        if not REGION_PATTERN.fullmatch(region) or region == ANY_REGION:
            raise ValueError(
                f"{region!r} in {entry!r} is not a region name (a-z, 0-9 and '-', not 'any')"
            )
        rules.append(RegionRule(pattern.lower(), region))
    return tuple(rules)


def preferred_region(rules: Sequence[RegionRule], spec: tasks_pb2.TaskSpec) -> str:
    """The region the first rule matching the host of `spec.url` names; "" when none does.

    A spec with its own region is not routed: that region is strict.
    """
    if spec.region or not rules:
        return ""
    host = (urlsplit(spec.url).hostname or "").rstrip(".")
    if not host:
        return ""
    return next((rule.region for rule in rules if rule.matches(host)), "")
