"""A background loop that does one round of work every few seconds until it is stopped.

Heartbeats, lease renewals, purges, republishing and sweeps are such loops: each
round starts one interval after the previous one ended (or at once, for the
first round, if asked), and a round that fails is logged and tried next time.
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
    """

    def __init__(
        self,
        name: str,
        work: Callable[[], Awaitable[object]],
        interval_seconds: float,
        *,
        survives: tuple[type[Exception], ...] = (Exception,),
        first_round_at_once: bool = False,
    ) -> None:
        self._name = name
        self._work = work
        self._interval_seconds = interval_seconds
        self._survives = survives
        self._first_round_at_once = first_round_at_once
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
            await self._pause()
        while not self._stopping.is_set():
            try:
                await self._work()
            except self._survives as error:
                log.warning(
                    "%s: a round failed (%s); trying again in %.1f s",
                    self._name,
                    error,
                    self._interval_seconds,
                )
            await self._pause()

    async def _pause(self) -> None:
        """Waits one interval, or less if the loop is stopped meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._interval_seconds):
                await self._stopping.wait()
