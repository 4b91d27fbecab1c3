"""A background loop that runs one round of work every few seconds until it is stopped."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError

from farm_core.errors import Unavailable

log = logging.getLogger(__name__)


class Periodic:
    """Runs `work` every `interval_seconds`; a round that fails is logged and tried next time."""

    def __init__(
        self, name: str, work: Callable[[], Awaitable[object]], interval_seconds: float
    ) -> None:
        self._name = name
        self._work = work
        self._interval_seconds = interval_seconds
        self._stopping = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    @property
    def stopping(self) -> bool:
        """Whether stop() was called: a round in progress should end early."""
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

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval_seconds)
            if self._stopping.is_set():
                return
            try:
                await self._work()
            except (SQLAlchemyError, OSError, Unavailable) as error:
                log.warning(
                    "%s: a round failed (%s); trying again in %.1f s",
                    self._name,
                    error,
                    self._interval_seconds,
                )
