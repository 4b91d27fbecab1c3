"""Pulling a durable JetStream consumer in a loop, each message handed on as soon as it is stored.

nats-py's `fetch(n)` for n > 1, once its request is waiting on the server (the
stream was idle), takes the first message that comes and then waits for n - 1
more until its timeout, unless the server ends the request first: on a quiet farm
a lone agent event so waited up to the fetch's whole 5 s before the scheduler
applied it (a `tasks:run` of a 0.1 s page answered after 0.1 to 4.7 s). A fetch of 1
returns with its message, and a fetch of no more messages than the consumer had
pending is filled at once. So a `Puller` asks for one while the consumer is idle,
and for a batch of those already pending (each delivered message says how many
follow it) while there is a backlog.
"""

import asyncio
import logging

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext

log = logging.getLogger(__name__)


async def fetch_batch(
    subscription: JetStreamContext.PullSubscription,
    batch: int,
    wait_seconds: float,
    what: str,
    retry_seconds: float,
) -> list[Msg]:
    """Up to `batch` messages of `what`; none when none came within `wait_seconds`.

    A failed fetch is logged and returns none after `retry_seconds`, so a pull loop
    goes on when NATS is back.
    """
    try:
        return await subscription.fetch(batch, timeout=wait_seconds)
    except TimeoutError:
        return []
    except nats.errors.Error as error:
        log.warning("fetching %s failed: %s; retrying", what, error)
        await asyncio.sleep(retry_seconds)
        return []


class Puller:
    """Fetches a pull subscription's messages: one at a time when idle, the backlog in batches."""

    def __init__(
        self,
        subscription: JetStreamContext.PullSubscription,
        most: int,
        wait_seconds: float,
        what: str,
        retry_seconds: float,
    ) -> None:
        self._subscription = subscription
        self._most = most
        self._wait_seconds = wait_seconds
        self._what = what
        self._retry_seconds = retry_seconds
        self._next_batch = 1

    @property
    def next_batch(self) -> int:
        """How many messages the next fetch asks for."""
        return self._next_batch

    async def fetch(self) -> list[Msg]:
        """The next messages (at most `most`); none when none came within `wait_seconds`."""
        messages = await fetch_batch(
            self._subscription,
            self._next_batch,
            self._wait_seconds,
            self._what,
            self._retry_seconds,
        )
        self._next_batch = max(1, min(self._most, _pending_after(messages)))
        return messages


def _pending_after(messages: list[Msg]) -> int:
    """How many messages the consumer held back after the last of `messages` (0 if unknown)."""
    if not messages:
        return 0
    try:
        return int(messages[-1].metadata.num_pending or 0)
    except (ValueError, nats.errors.Error):
        # Not a JetStream delivery (its reply subject is not an ack subject).
        return 0
