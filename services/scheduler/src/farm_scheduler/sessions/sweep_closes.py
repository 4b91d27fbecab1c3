"""The closes the session sweep decides on, run beside it: a few at once, one per session.

An ordered close waits for its agent's answer for up to the close timeout (an agent
encodes and stores a recording first); awaited one after another, one slow agent
held up every other close the sweep found due (a lost agent's sessions, expired
ones) and the sweep itself. Each close runs in a task of its own, at most
SWEEP_CLOSES_AT_ONCE at a time, and a session whose close is still under way is
left alone by the sweeps that come meanwhile.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from farm_core.cancel import cancel_and_wait

log = logging.getLogger(__name__)

SWEEP_CLOSES_AT_ONCE = 16
"""How many of the sweep's closes run at the same time (the others wait for a turn)."""


class SweepCloses:
    """The sweep's closes under way, by session id."""

    def __init__(self, at_once: int = SWEEP_CLOSES_AT_ONCE) -> None:
        self._turns = asyncio.Semaphore(at_once)
        self._running: dict[str, asyncio.Task[None]] = {}

    def start(self, session_id: str, close: Callable[[], Awaitable[object]]) -> bool:
        """Starts `close` unless a close of this session is under way; whether it started."""
        if session_id in self._running:
            return False
        task = asyncio.create_task(self._run(session_id, close), name=f"close-{session_id}")
        self._running[session_id] = task
        task.add_done_callback(lambda _: self._running.pop(session_id, None))
        return True

    async def stop(self, grace_seconds: float) -> None:
        """Waits up to the grace for the closes under way, then cancels those left."""
        running = list(self._running.values())
        if not running:
            return
        _, left = await asyncio.wait(running, timeout=grace_seconds)
        for task in left:
            await cancel_and_wait(task, task.get_name())
        if left:
            log.info("session sweep: %d close(s) cancelled as the scheduler stops", len(left))

    async def _run(self, session_id: str, close: Callable[[], Awaitable[object]]) -> None:
        async with self._turns:
            try:
                await close()
            except Exception as error:
                # The session is still open: the next sweep finds it due again.
                log.warning(
                    "session %s: the sweep's close failed (%s); the next sweep tries again",
                    session_id,
                    error,
                )
