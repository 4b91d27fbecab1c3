"""Who takes a task queued for a preferred region: one of its agents, or the fallback.

A task routed by the scheduler's region rules is published on its preferred
region's subject with a `WorkItem.claim_key`. Before an agent of that region
starts it, the agent claims the key STARTED; before the scheduler moves the task
to `tasks.any.*`, it claims the key MOVED. Both claims are a key-value create, which
JetStream lets only one writer win, so the task either runs in its region (and is
never moved) or is moved (and its region's message is acked unrun by whichever
agent meets it). A claim that is already there is kept, so every later delivery of
the same message, and every later round of the fallback, sees the same answer.
"""

import enum

from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue


class Claim(enum.StrEnum):
    """The one answer a route claim key ever holds."""

    STARTED = "started"
    """An agent of the preferred region started the task: it stays there."""
    MOVED = "moved"
    """The scheduler moved the task to any region: the preferred region's message is void."""


async def take(bucket: KeyValue, key: str, wanted: Claim) -> Claim:
    """Claims `key` as `wanted` unless it is claimed already; the claim that holds.

    Raises nats.errors.Error or TimeoutError when NATS cannot say: then neither side
    may act on the task.
    """
    try:
        await bucket.create(key, wanted.value.encode())
    except KeyWrongLastSequenceError:
        entry = await bucket.get(key)
        return Claim((entry.value or b"").decode())
    return wanted
