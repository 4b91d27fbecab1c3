"""The blocking Client's own loop: a caller that gives up ends its work, a close the rest."""

import asyncio
import gc
import os
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import grpc
import pytest

import browserfarm
from browserfarm.loop_thread import LoopThread
from farm.tasks.v1 import tasks_pb2_grpc
from farm_core.free_ports import free_port
from tests.helpers import eventually
from tests.unit.sdk.conftest import Refusals


@dataclass
class Watches:
    """When a WatchTask call of the fake arrived, and when it ended."""

    started: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)


class SilentTasks(tasks_pb2_grpc.TaskServiceServicer):
    """WatchTask of a task that never ends: no event, the stream open until the client ends it."""

    def __init__(self, watches: Watches) -> None:
        self.watches = watches

    def WatchTask(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        context.add_callback(self.watches.ended.set)
        self.watches.started.set()
        gone = threading.Event()
        context.add_callback(gone.set)
        gone.wait(timeout=30)
        yield from ()


@pytest.fixture(scope="module")
def silent_farm() -> Iterator[tuple[str, Watches]]:
    """The fake's URL and its watches, for one module."""
    watches = Watches()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    # A partial fake: the generated base answers UNIMPLEMENTED for the RPCs it leaves out.
    tasks_pb2_grpc.add_TaskServiceServicer_to_server(SilentTasks(watches), server)  # type: ignore[abstract]
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    yield f"http://127.0.0.1:{port}", watches
    server.stop(grace=None)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def test_a_wait_interrupted_by_ctrl_c_ends_its_watch_on_the_farm(
    silent_farm: tuple[str, Watches],
) -> None:
    url, watches = silent_farm
    watches.started.clear()
    watches.ended.clear()

    def press_ctrl_c() -> None:
        if watches.started.wait(timeout=20):
            os.kill(os.getpid(), signal.SIGUSR1)

    before = signal.signal(signal.SIGUSR1, _interrupt)
    try:
        with browserfarm.Client(url, "bf_key") as farm:
            threading.Thread(target=press_ctrl_c, daemon=True).start()
            with pytest.raises(KeyboardInterrupt):
                farm.wait("tsk_1")
            # Checked before the client closes, which would end the call anyway.
            eventually(watches.ended.is_set, message="the watch is still open on the farm")
    finally:
        signal.signal(signal.SIGUSR1, before)


def test_stopping_the_loop_ends_the_tasks_and_generators_left_on_it() -> None:
    loop = LoopThread()
    ended: list[str] = []

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            ended.append("task")

    async def lines() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            await asyncio.sleep(0)
            ended.append("generator")

    async def leave_behind() -> tuple["asyncio.Task[None]", AsyncIterator[int]]:
        # As a streamed reply read up to the event wanted leaves httpx's generators.
        source = lines()
        await anext(source)
        return asyncio.ensure_future(forever()), source

    left = loop.run(leave_behind())
    loop.stop()
    assert sorted(ended) == ["generator", "task"], left


def test_an_iterator_left_open_past_the_clients_close_ends_quietly(
    refusing_farm: tuple[str, Refusals], refusals: Refusals
) -> None:
    # As `for task in farm.map(...)` left early inside a `with`, then dropped after it:
    # an error raised as it is closed would be "Exception ignored in ..." (under pytest, an error).
    farm = browserfarm.Client(refusing_farm[0], "bf_key")
    spec = {"url": "https://example.com", "content": {}}
    ran = farm.map([spec, spec], concurrency=1)
    assert next(ran).done
    farm.close()
    ran.close()


def test_an_iterator_is_finished_on_the_clients_loop_as_the_client_closes(
    refusing_farm: tuple[str, Refusals],
) -> None:
    ended_on: list[str] = []

    async def numbers() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            ended_on.append(threading.current_thread().name)

    farm = browserfarm.Client(refusing_farm[0], "bf_key")
    # What list_tasks() and map() wrap their async generators in.
    ran = farm._iterated(numbers())
    assert next(ran) == 1
    farm.close()
    ran.close()
    del ran
    gc.collect()
    assert ended_on == ["browserfarm-loop"]


def _closed_by_three_threads_at_once(farm: browserfarm.Client) -> list[BaseException]:
    """What each of three threads calling farm.close() together raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def close() -> None:
        start.wait()
        try:
            farm.close()
        except BaseException as error:
            errors.append(error)

    closers = [threading.Thread(target=close) for _ in range(3)]
    for closer in closers:
        closer.start()
    for closer in closers:
        closer.join(timeout=30)
    assert not any(closer.is_alive() for closer in closers), "a close did not return"
    return errors


def test_threads_closing_one_client_at_once_each_return_without_an_error(
    refusing_farm: tuple[str, Refusals],
) -> None:
    for _ in range(5):
        assert (
            _closed_by_three_threads_at_once(browserfarm.Client(refusing_farm[0], "bf_key")) == []
        )
