"""A background loop that does one round of work every few seconds until it is stopped.

Heartbeats, lease renewals, purges, republishing and sweeps are such loops: each
round starts one interval after the previous one ended (or at once, for the
first round, if asked), and a round that fails is logged and tried next time (or
sooner, if asked: after a bounded backoff).
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from farm_core.cancel import cancel_and_wait

log = logging.getLogger(__name__)


class Periodic:
    """Runs `work` every `interval_seconds` until stopped.

    A round that raises one of `survives` (any Exception unless told) is logged as a
    warning and the loop goes on; any other error ends the loop and is raised by stop().
    With `retry_seconds`, the round after a failed one comes that soon, doubled after each
    further failure in a row (never later than one interval).
    """

    def __init__(
        self,
        name: str,
        work: Callable[[], Awaitable[object]],
        interval_seconds: float,
        *,
        survives: tuple[type[Exception], ...] = (Exception,),
        first_round_at_once: bool = False,
        retry_seconds: float | None = None,
    ) -> None:
        self._name = name
        self._work = work
        self._interval_seconds = interval_seconds
        self._survives = survives
        self._first_round_at_once = first_round_at_once
        self._retry_seconds = retry_seconds
        self._stopping = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    @property
    def stopping(self) -> bool:
        """Whether stop() or cancel() was called: a round in progress should end early."""
        return self._stopping.is_set()

    def start(self) -> None:
        """Starts the background loop."""
        if self._loop is None:
            self._loop = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        """Stops the loop after the round in progress, if any."""
        self._stopping.set()
        if self._loop is not None:
            await self._loop

    async def cancel(self) -> None:
        """Stops the loop at once, cancelling the round in progress, if any."""
        self._stopping.set()
        if self._loop is not None:
            await cancel_and_wait(self._loop, self._name)

    async def _run(self) -> None:
        if not self._first_round_at_once:
            await self._pause(self._interval_seconds)
        failures = 0
        while not self._stopping.is_set():
            try:
                await self._work()
                failures = 0
            except self._survives as error:
                failures += 1
                log.warning(
                    "%s: a round failed (%s); trying again in %.1f s",
                    self._name,
                    error,
                    self.pause_after(failures),
                )
            await self._pause(self.pause_after(failures))

    def pause_after(self, failures: int) -> float:
        """How long the loop waits after a round that ended `failures` failed rounds in a row."""
        if not failures or self._retry_seconds is None:
            return self._interval_seconds
        backoff: float = self._retry_seconds * 2.0 ** min(failures - 1, 32)
        return min(backoff, self._interval_seconds)

    async def _pause(self, seconds: float) -> None:
        """Waits `seconds`, or less if the loop is stopped meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
