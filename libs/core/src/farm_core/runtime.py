"""Running a service's main coroutine on the event loop FARM_EVENT_LOOP names."""

import asyncio
from collections.abc import Callable, Coroutine
from enum import StrEnum
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


class EventLoop(StrEnum):
    """The event loop implementations a service may run on."""

    UVLOOP = "uvloop"
    ASYNCIO = "asyncio"


def loop_factory(kind: EventLoop | str) -> Callable[[], asyncio.AbstractEventLoop]:
    """Makes new event loops of `kind`."""
    if EventLoop(kind) is EventLoop.UVLOOP:
        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], kind: EventLoop | str) -> T:
    """Runs `main` to completion on a new loop of `kind`, as `asyncio.run` does, and closes it."""
    with asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
        return runner.run(main)
