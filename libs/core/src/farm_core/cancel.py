"""Cancelling work for sure (3.11's wait_for can swallow a cancel), or once a signal comes."""

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

Result = TypeVar("Result")

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


class Interrupted(Exception):
    """The work `unless_set` awaited was cancelled: its signal was set first."""


async def unless_set(work: Awaitable[Result], signal: asyncio.Event, what: str) -> Result:
    """Awaits `work`; if `signal` is set first, cancels `work` and raises Interrupted.

    For work on something that may never answer (a browser that went away, a page held
    by a dialog): the caller says what the signal means. `what` names the work in a
    warning if it does not stop when cancelled. A cancel of the caller cancels `work`.
    """
    working = asyncio.ensure_future(work)
    signalled = asyncio.ensure_future(signal.wait())
    interrupted = False
    try:
        await asyncio.wait({working, signalled}, return_when=asyncio.FIRST_COMPLETED)
        # Work that ended as the signal came keeps its outcome.
        interrupted = not working.done()
    finally:
        signalled.cancel()
        if not working.done():
            await cancel_and_wait(working, what)
    if interrupted:
        raise Interrupted(what)
    return working.result()
