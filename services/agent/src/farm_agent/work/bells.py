"""Doorbells rung later: a task handed back with a delay rings its queue's bell once it is due."""

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

REDELIVERY_MARGIN_SECONDS = 0.02
"""A handed-back task's bell rings this long after its delay, once the server offers it."""


class LaterBells:
    """Rings `ring(subject)` after a delay for each task handed back; calls them all off at once."""

    def __init__(self, ring: Callable[[str], Coroutine[Any, Any, None]]) -> None:
        self._ring = ring
        self._bells: set[asyncio.TimerHandle] = set()
        self._rings: set[asyncio.Task[None]] = set()

    def ring_later(self, subject: str, delay: float) -> None:
        """Rings the bell of `subject` once a task handed back with `delay` is due."""
        loop = asyncio.get_running_loop()

        def ring() -> None:
            self._bells.discard(bell)
            task = loop.create_task(self._ring(subject))
            self._rings.add(task)
            task.add_done_callback(self._rings.discard)

        bell = loop.call_later(delay + REDELIVERY_MARGIN_SECONDS, ring)
        self._bells.add(bell)

    def call_off(self) -> None:
        """Cancels every bell not rung yet."""
        for bell in self._bells:
            bell.cancel()
        self._bells.clear()
