"""Batch items the edge refused alone: auth's check names them, the scheduler refuses them.

Envoy's grpc_json_transcoder drops a JSON field the message lacks without a word, so
an item of `POST /v1/tasks:batchCreate` with a misspelt field would be queued as if
the field were not there. Auth's edge check reads the body (farm_auth.json_body);
for a batch it lets the call through and names each such item in the header
x-farm-refused-items, which Envoy forwards to the scheduler (and strips from every
client request), and the scheduler answers each of them as a refused item
(INVALID_ARGUMENT naming `requests[i].<field>`) while the others are queued.

The header's value is JSON, ASCII only: a list of [field, problem, [[first, last],
...]], one per distinct (field, problem), with the items' indexes as ranges, so that
a batch of 1,000 items that share one mistake is a short header. `field` is the path
within the item (`fooBar`, `screenshot.fullpage`).
"""

import json
from collections.abc import Iterable, Mapping

REFUSED_ITEMS_HEADER = "x-farm-refused-items"
MAX_ITEMS = 1000
"""The most items a batch has (CreateTasks' limit)."""
MAX_HEADER_CHARS = 4096
"""The longest header value sent: gRPC servers take 8 KiB of metadata by default."""

ItemProblem = tuple[str, str]
"""An item's bad field (its path within the item) and what is wrong with it."""


def encode(problems: Mapping[int, ItemProblem]) -> str | None:
    """The header value naming each item's problem by index; None if over MAX_HEADER_CHARS."""
    grouped: dict[ItemProblem, list[list[int]]] = {}
    for index in sorted(problems):
        ranges = grouped.setdefault(problems[index], [])
        if ranges and ranges[-1][1] == index - 1:
            ranges[-1][1] = index
        else:
            ranges.append([index, index])
    value = json.dumps(
        [[field, problem, ranges] for (field, problem), ranges in grouped.items()],
        separators=(",", ":"),
    )
    return value if len(value) <= MAX_HEADER_CHARS else None


def decode(value: str) -> dict[int, ItemProblem]:
    """Each refused item's problem by index, from the header's value; {} if it is malformed."""
    try:
        groups = json.loads(value)
        return dict(_items(groups))
    except (ValueError, TypeError):
        return {}


def _items(groups: object) -> Iterable[tuple[int, ItemProblem]]:
    if not isinstance(groups, list):
        raise TypeError("not a list")
    for field, problem, ranges in groups:
        if not isinstance(field, str) or not isinstance(problem, str):
            raise TypeError("field and problem are strings")
        for first, last in ranges:
            # No batch has more items than this: a range past it names none of them.
            for index in range(max(int(first), 0), min(int(last), MAX_ITEMS - 1) + 1):
                yield index, (field, problem)
