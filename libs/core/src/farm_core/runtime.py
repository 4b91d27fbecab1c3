"""Running a service's main coroutine on the event loop FARM_EVENT_LOOP names."""

import asyncio
import gc
import logging
from collections.abc import Callable, Coroutine
from enum import StrEnum
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")

log = logging.getLogger(__name__)

START_FAILURE_EXIT_CODE = 1


class StartFailure(Exception):
    """A start that cannot go on; its message says why and which setting to look at.

    A process's entry point ends on it with that message alone, not a traceback.
    """


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


def run_process(main: Coroutine[Any, Any, T], kind: EventLoop | str) -> T:
    """Runs a process's `main` as `run` does; then the process may only exit.

    For a process's entry point, not for code that goes on in the same process.
    A StartFailure ends the process with status 1 and its message logged, no traceback.
    The heap the imports made (modules, protobuf descriptors, gRPC, SQLAlchemy,
    pydantic: most of a service's objects, which live as long as the process) is
    frozen first, out of the cycle collector's way: its older generations walked it
    all again, and during batches of creates the collector was about a quarter of
    the scheduler's event loop (a native profile's `gc_collect_main`).
    """
    gc.freeze()
    try:
        return run(main, kind)
    except StartFailure as failure:
        log.error("cannot start: %s", failure)
        raise SystemExit(START_FAILURE_EXIT_CODE) from None
    finally:
        leave_heap_to_exit()


def leave_heap_to_exit() -> None:
    """Keeps the interpreter's teardown from walking the heap: the process is about to exit.

    At exit the interpreter runs its cycle collector several times while it
    clears every module, over the whole heap of a service (some 130,000 objects:
    gRPC, SQLAlchemy, protobuf descriptors, pydantic): 0.25 s to 1 s after the
    service had stopped, paid once per process on every farm stop. Frozen, those
    objects are left for the OS to reclaim. What a stop must do is done before:
    the service closed what it opened, atexit handlers (logging's flush) still
    run, and the standard streams are still flushed; only finalizers of objects
    in reference cycles no longer run, which Python does not promise at exit.
    """
    gc.freeze()
