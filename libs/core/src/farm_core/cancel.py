"""Cancelling a task for sure: Python 3.11's wait_for can swallow a cancel (nats-py uses it)."""

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)

CANCEL_ATTEMPTS = 20
CANCEL_INTERVAL_SECONDS = 0.05


async def cancel_and_wait(future: "asyncio.Future[Any]", what: str) -> None:
    """Cancels `future` until it is done, a bounded number of times; never raises.

    A cancel that arrives as an inner wait_for finishes is lost in Python 3.11, and
    a loop that retries on errors then runs on; cancelling again ends it. A future
    still running after every attempt is left behind with a warning.
    """
    for _ in range(CANCEL_ATTEMPTS):
        if future.done():
            break
        future.cancel()
        await asyncio.wait({future}, timeout=CANCEL_INTERVAL_SECONDS)
    if not future.done():
        log.warning("%s did not stop when cancelled; left behind", what)
        future.add_done_callback(_outcome_seen)
        return
    _outcome_seen(future)


def _outcome_seen(future: "asyncio.Future[Any]") -> None:
    # Reading the exception keeps asyncio from logging "exception never retrieved".
    if not future.cancelled():
        future.exception()
