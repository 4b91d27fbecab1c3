"""LoopThread: an asyncio loop in a thread of its own, which the blocking Client runs on."""

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

from browserfarm.calls import CLOSED

Value = TypeVar("Value")

WIND_DOWN_SECONDS = 10.0
"""How long a closing client waits for the work left on its loop to end."""


async def _wound_down() -> None:
    """Ends what is left on the running loop, as asyncio.run does before it closes its loop.

    Tasks still running are cancelled and awaited, and async generators not run to their
    end are closed: httpx's, left by a streamed reply that was read only up to the event
    wanted, are finalized by tasks of their own, which a loop stopped at once left pending
    ("Task was destroyed but it is pending!" as it closed, their `finally` never run).
    """
    current = asyncio.current_task()
    left = [task for task in asyncio.all_tasks() if task is not current]
    for task in left:
        task.cancel()
    await asyncio.gather(*left, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


class LoopThread:
    """An asyncio loop running in a daemon thread, which blocking callers hand work to."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="browserfarm-loop", daemon=True
        )
        self._thread.start()

    def run(self, work: Awaitable[Value]) -> Value:
        """The result of `work`, run on the loop; its exception is raised here.

        run_coroutine_threadsafe runs it in a copy of the caller's context, so the
        caller's current trace is the one its calls pass on. A caller interrupted while
        it waits (Ctrl-C) cancels `work`. After stop() it raises RuntimeError, and `work`
        is closed unrun (no "never awaited" warning).
        """
        if self._loop.is_closed():
            if isinstance(work, Coroutine):
                work.close()
            raise RuntimeError(CLOSED)

        async def awaited() -> Value:
            return await work

        coroutine: Coroutine[Any, Any, Value] = awaited()
        running = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return running.result()
        except BaseException:
            # The caller gave up waiting (Ctrl-C, KeyboardInterrupt): the work must end
            # too, or it would run on, unwatched, on the loop (a watch kept open on the farm).
            running.cancel()
            raise

    @property
    def stopped(self) -> bool:
        """Whether stop() has been called."""
        return self._loop.is_closed()

    def stop(self) -> None:
        """Ends what is left on the loop (see _wound_down), then stops the loop and its thread."""
        if self._loop.is_closed():
            return
        ending = asyncio.run_coroutine_threadsafe(_wound_down(), self._loop)
        with contextlib.suppress(concurrent.futures.TimeoutError):
            ending.result(timeout=WIND_DOWN_SECONDS)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
