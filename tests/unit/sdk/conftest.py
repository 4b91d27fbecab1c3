"""For the SDK's unit tests: an in-process TaskService that refuses the first calls as told,
and a listener that never answers."""

import contextlib
import socket
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from farm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from farm_core.free_ports import free_port


@dataclass
class Refusals:
    """The statuses the next calls get, in order (then they are served), and what was sent."""

    statuses: list[tuple[grpc.StatusCode, str]] = field(default_factory=list)
    """(code, retry-after or "") per refused call; OK serves that call."""
    specs: list[tasks_pb2.TaskSpec] = field(default_factory=list)
    metadata: list[dict[str, str]] = field(default_factory=list)
    batches: list[list[tasks_pb2.TaskSpec]] = field(default_factory=list)
    """The specs of each CreateTasks call, refused ones included."""
    watch_ended: threading.Event = field(default_factory=threading.Event)
    """Set once a WatchTask call (which sends the final event, then waits 30 s) has ended."""


class RefusingTasks(tasks_pb2_grpc.TaskServiceServicer):
    """CreateTask, RunTask and CreateTasks: refused while `refusals.statuses` lasts, then served."""

    def __init__(self, refusals: Refusals) -> None:
        self.refusals = refusals

    def _refuse_if_told(self, context: grpc.ServicerContext) -> None:
        self.refusals.metadata.append(dict(context.invocation_metadata()))
        if self.refusals.statuses:
            code, retry_after = self.refusals.statuses.pop(0)
            if code == grpc.StatusCode.OK:
                return
            if retry_after:
                context.set_trailing_metadata((("retry-after", retry_after),))
            context.abort(code, f"refused with {code.name}")

    def _answer(
        self,
        spec: tasks_pb2.TaskSpec,
        context: grpc.ServicerContext,
        status: tasks_pb2.TaskStatus.ValueType,
    ) -> Any:
        self.refusals.specs.append(spec)
        self._refuse_if_told(context)
        return tasks_pb2.Task(id=f"tsk_{len(self.refusals.specs)}", status=status, spec=spec)

    def CreateTasks(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.refusals.batches.append(list(request.requests))
        self._refuse_if_told(context)
        # A task's id is its idempotency key's, as the farm gives one key one task.
        made = [
            tasks_pb2.Task(
                id=f"tsk_{spec.idempotency_key}", status=tasks_pb2.TASK_STATUS_QUEUED, spec=spec
            )
            for spec in request.requests
        ]
        return tasks_pb2.CreateTasksResponse(tasks=made)

    def CreateTask(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._answer(request.spec, context, tasks_pb2.TASK_STATUS_QUEUED)

    def RunTask(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._answer(request.spec, context, tasks_pb2.TASK_STATUS_SUCCEEDED)

    def WatchTask(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        """The task ended, then the stream kept open (no status sent) until the client ends it.

        `watch_ended` is set when the call ends, which it does by itself only after 30 s.
        """
        # Before the event: a call the client ends at once may be over before the
        # generator runs again (grpc then never resumes it, nor calls a callback added late).
        context.add_callback(self.refusals.watch_ended.set)
        ended = tasks_pb2.Task(id=request.id, status=tasks_pb2.TASK_STATUS_SUCCEEDED)
        yield tasks_pb2.TaskEvent(task_id=request.id, status=ended.status, task=ended)
        gone = threading.Event()
        context.add_callback(gone.set)
        gone.wait(timeout=30)


@pytest.fixture(scope="module")
def refusing_farm() -> Iterator[tuple[str, Refusals]]:
    """The fake's URL and its refusals, for one module."""
    refusals = Refusals()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    # A partial fake: the generated base answers UNIMPLEMENTED for the RPCs it leaves out.
    tasks_pb2_grpc.add_TaskServiceServicer_to_server(RefusingTasks(refusals), server)  # type: ignore[abstract]
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    yield f"http://127.0.0.1:{port}", refusals
    server.stop(grace=None)


@pytest.fixture
def refusals(refusing_farm: tuple[str, Refusals]) -> Refusals:
    """The fake's refusals, emptied for the test."""
    _, refused = refusing_farm
    refused.statuses.clear()
    refused.specs.clear()
    refused.metadata.clear()
    refused.batches.clear()
    refused.watch_ended.clear()
    return refused


@pytest.fixture(scope="module")
def silent_listener() -> Iterator[str]:
    """The URL of a listener that takes connections and never answers a byte."""
    listener = socket.create_server(("127.0.0.1", free_port()))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(timeout=10)
    for connection in held:
        connection.close()
    listener.close()
