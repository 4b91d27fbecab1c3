"""The bucket of ended tasks as the scheduler's tests read it: each task's end mark."""

import contextlib

from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from tests.helpers import assert_eventually


async def end_mark(bucket: KeyValue, task_id: str) -> str | None:
    """The task's mark in the bucket of ended tasks, or None."""
    with contextlib.suppress(KeyNotFoundError):
        entry = await bucket.get(task_id)
        return (entry.value or b"").decode()
    return None


async def until_marked(bucket: KeyValue, task_id: str, reason: str) -> None:
    """Waits until the task is marked ended with `reason`."""

    async def marked() -> bool:
        return await end_mark(bucket, task_id) == reason

    await assert_eventually(marked, message=f"task {task_id} was never marked {reason}")
