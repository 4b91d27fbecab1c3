"""In-process stand-ins for the farm's services, to test the CLI and Envoy's configuration.

They answer the public RPCs with canned data and record what they were sent (Calls).
The fake auth, with the edge check Envoy asks, is in fake_auth.py; here are the fake
scheduler's and storage's services and the farms that serve them all.
"""

from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

import grpc
from google.api import httpbody_pb2  # type: ignore[import-untyped]
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from farm.admin.v1 import admin_pb2, admin_pb2_grpc
from farm.auth.v1 import auth_pb2_grpc
from farm.storage.v1 import artifacts_pb2, artifacts_pb2_grpc, ingest_pb2, ingest_pb2_grpc
from farm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from farm_cli.launcher.processes import free_ports
from farm_core.free_ports import free_port
from tests.unit.cli.fake_auth import FakeAuth, start_fake_check
from tests.unit.cli.fake_calls import Calls
from tests.unit.cli.fake_fleet import fleet_status

TRACED_TASK_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
# How many CancelTask calls of a "limited..." task the fake rate-limits.
RATE_LIMITED_CANCELS = 2
# How many RunTask calls of a URL with "limited" in it the fake rate-limits.
RATE_LIMITED_RUNS = 2
# The Retry-After (seconds) of a CreateTasks whose first spec's URL has "limited" in it:
# its first call is rate-limited.
BATCH_RETRY_AFTER = 1
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4

# Storage's message when S3 refuses its connections: the farm answered, so no hint
# that it is not running.
S3_DOWN = "S3 is unavailable: Failed to establish a new connection: [Errno 111] Connection refused"
# The note of a running task whose result storage keeps refusing (Task.status_message).
STORAGE_WAIT = "waiting for storage: storage unavailable (S3 is unavailable); retrying"
RUNNING = tasks_pb2.TASK_STATUS_RUNNING


class FakeTasks(tasks_pb2_grpc.TaskServiceServicer):
    """Task "missing" is NOT_FOUND, "traced" has a trace id, "s3-down" is UNAVAILABLE as
    storage says when S3 refuses its connections, "waiting" runs waiting for storage
    (STORAGE_WAIT, also in its RUNNING event); ListTasks has two pages.

    For CancelTask: "done" has SUCCEEDED already; the first RATE_LIMITED_CANCELS cancels
    of a task whose id starts "limited" are rate-limited (Retry-After 0); a task whose
    id starts "broken" cannot be cancelled (INTERNAL); the key may not touch "denied".
    The first ListTasks by a label "limited=..." is rate-limited too, and the first
    RATE_LIMITED_RUNS RunTask calls of a URL with "limited" in it. The first CreateTasks
    of a batch whose first spec's URL has "limited" in it is rate-limited (Retry-After
    BATCH_RETRY_AFTER), with "flaky" in it UNAVAILABLE; every CreateTasks of a batch
    whose first spec's URL has "broken" in it fails (INTERNAL).
    """

    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    def CreateTask(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("CreateTask", request, context)
        return tasks_pb2.Task(id="t1", status=tasks_pb2.TASK_STATUS_QUEUED, spec=request.spec)

    def CreateTasks(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Queues every spec but those with an ftp URL, which are refused by index."""
        self.calls.record("CreateTasks", request, context)
        first_url = request.requests[0].url if request.requests else ""
        if self._batches_from(first_url) == 1 and "limited" in first_url:
            context.set_trailing_metadata((("retry-after", str(BATCH_RETRY_AFTER)),))
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "over its rate limit")
        if self._batches_from(first_url) == 1 and "flaky" in first_url:
            context.abort(grpc.StatusCode.UNAVAILABLE, "the scheduler is restarting")
        if "broken" in first_url:
            context.abort(grpc.StatusCode.INTERNAL, "the database went away")
        answer = tasks_pb2.CreateTasksResponse()
        for index, spec in enumerate(request.requests):
            if spec.url.startswith("ftp:"):
                answer.errors.add(
                    index=index,
                    field=f"requests[{index}].url",
                    code="INVALID_ARGUMENT",
                    message=f"requests[{index}].url: must be http or https",
                )
            else:
                answer.tasks.add(id=f"t{index}", status=tasks_pb2.TASK_STATUS_QUEUED, spec=spec)
        return answer

    def RunTask(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("RunTask", request, context)
        if "limited" in request.spec.url and self._runs_of(request.spec.url) <= RATE_LIMITED_RUNS:
            context.set_trailing_metadata((("retry-after", "0"),))
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "over its rate limit")
        if "unended" in request.spec.url:
            # RunTask's wait ran out while the task still waited in the queue.
            return tasks_pb2.Task(id="t1", status=tasks_pb2.TASK_STATUS_QUEUED, spec=request.spec)
        return tasks_pb2.Task(id="t1", status=tasks_pb2.TASK_STATUS_SUCCEEDED, spec=request.spec)

    def GetTask(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("GetTask", request, context)
        if request.id == "missing":
            context.abort(grpc.StatusCode.NOT_FOUND, "task missing not found")
        if request.id == "s3-down":
            context.abort(grpc.StatusCode.UNAVAILABLE, S3_DOWN)
        trace_id = TRACED_TASK_TRACE_ID if request.id == "traced" else ""
        done = request.id == "done"
        status = tasks_pb2.TASK_STATUS_SUCCEEDED if done else tasks_pb2.TASK_STATUS_RUNNING
        note = STORAGE_WAIT if request.id == "waiting" else ""
        return tasks_pb2.Task(id=request.id, status=status, trace_id=trace_id, status_message=note)

    def ListTasks(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("ListTasks", request, context)
        limited = [label for label in request.label if label.startswith("limited=")]
        if limited and self._listings_with(limited[0]) == 1:
            context.set_trailing_metadata((("retry-after", "0"),))
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "over its rate limit")
        if request.page_token == "":
            tasks = [tasks_pb2.Task(id="t1"), tasks_pb2.Task(id="t2")]
            return tasks_pb2.ListTasksResponse(tasks=tasks, next_page_token="page2")
        return tasks_pb2.ListTasksResponse(tasks=[tasks_pb2.Task(id="t3")])

    def _runs_of(self, url: str) -> int:
        return sum(
            name == "RunTask" and request.spec.url == url for name, request, _ in self.calls.seen
        )

    def _batches_from(self, url: str) -> int:
        return sum(
            name == "CreateTasks" and bool(request.requests) and request.requests[0].url == url
            for name, request, _ in self.calls.seen
        )

    def _listings_with(self, label: str) -> int:
        return sum(
            name == "ListTasks" and label in request.label for name, request, _ in self.calls.seen
        )

    def CancelTask(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("CancelTask", request, context)
        if request.id == "missing":
            context.abort(grpc.StatusCode.NOT_FOUND, "task missing not found")
        if request.id == "denied":
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "the key lacks tasks.write")
        if request.id.startswith("broken"):
            context.abort(grpc.StatusCode.INTERNAL, "the database went away")
        if request.id == "done":
            return tasks_pb2.Task(id=request.id, status=tasks_pb2.TASK_STATUS_SUCCEEDED)
        if request.id.startswith("limited") and self.calls.count("CancelTask", request.id) <= (
            RATE_LIMITED_CANCELS
        ):
            context.set_trailing_metadata((("retry-after", "0"),))
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "over its rate limit")
        return tasks_pb2.Task(id=request.id, status=tasks_pb2.TASK_STATUS_CANCELLED)

    def CancelTasks(self, request: Any, context: grpc.ServicerContext) -> Any:
        """CancelTask's rules for each id, as one batch: "denied" or a first call with a
        "limited..." id (RATE_LIMITED_CANCELS times) fails the call, "missing" is NOT_FOUND
        and "broken..." UNAVAILABLE by index, "done" had ended before."""
        self.calls.record("CancelTasks", request, context)
        if "denied" in request.ids:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "the key lacks tasks.write")
        limited = [task_id for task_id in request.ids if task_id.startswith("limited")]
        if limited and self._cancel_batches_with(limited[0]) <= RATE_LIMITED_CANCELS:
            context.set_trailing_metadata((("retry-after", "0"),))
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "over its rate limit")
        answer = tasks_pb2.CancelTasksResponse()
        for index, task_id in enumerate(request.ids):
            field = f"ids[{index}]"
            if task_id == "missing":
                message = f"{field}: task 'missing' not found"
                answer.errors.add(index=index, field=field, code="NOT_FOUND", message=message)
            elif task_id.startswith("broken"):
                message = f"{field}: task {task_id!r} kept changing; try again"
                answer.errors.add(index=index, field=field, code="UNAVAILABLE", message=message)
            elif task_id == "done":
                answer.tasks.add(id=task_id, status=tasks_pb2.TASK_STATUS_SUCCEEDED)
                answer.already_ended.append(task_id)
            else:
                answer.tasks.add(id=task_id, status=tasks_pb2.TASK_STATUS_CANCELLED)
        return answer

    def _cancel_batches_with(self, task_id: str) -> int:
        return sum(
            name == "CancelTasks" and task_id in request.ids for name, request, _ in self.calls.seen
        )

    def GetWebhookSecret(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("GetWebhookSecret", request, context)
        return tasks_pb2.WebhookSecret(secret="whsec_current")

    def RotateWebhookSecret(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("RotateWebhookSecret", request, context)
        return tasks_pb2.WebhookSecret(secret="whsec_new")

    def WatchTask(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        self.calls.record("WatchTask", request, context)
        for status in (
            tasks_pb2.TASK_STATUS_QUEUED,
            tasks_pb2.TASK_STATUS_RUNNING,
            tasks_pb2.TASK_STATUS_SUCCEEDED,
        ):
            note = STORAGE_WAIT if request.id == "waiting" and status == RUNNING else ""
            task = tasks_pb2.Task(id=request.id, status=status, status_message=note)
            yield tasks_pb2.TaskEvent(task_id=request.id, status=status, task=task)


class FakeArtifacts(artifacts_pb2_grpc.ArtifactServiceServicer):
    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    def GetArtifact(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("GetArtifact", request, context)
        return artifacts_pb2.Artifact(id=request.id, content_type="image/png", size_bytes=1)

    def GetArtifactContent(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Artifact "size-N" holds N bytes; any other holds PNG_BYTES."""
        self.calls.record("GetArtifactContent", request, context)
        if request.id.startswith("size-"):
            data = bytes(range(256)) * (int(request.id.removeprefix("size-")) // 256)
            return httpbody_pb2.HttpBody(content_type="application/octet-stream", data=data)
        return httpbody_pb2.HttpBody(content_type="image/png", data=PNG_BYTES)

    def ListArtifacts(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("ListArtifacts", request, context)
        return artifacts_pb2.ListArtifactsResponse(
            artifacts=[artifacts_pb2.Artifact(id="a1", task_id=request.task_id)]
        )


class FakeIngest(ingest_pb2_grpc.ArtifactIngestServiceServicer):
    """Served by the fake storage so a test can show Envoy never routes to it."""

    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    def UploadArtifact(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Any:
        self.calls.record("UploadArtifact", None, context)
        return ingest_pb2.UploadArtifactResponse()


class FakeAdmin(admin_pb2_grpc.AdminServiceServicer):
    """Agent "gone" is NOT_FOUND; "shared" needs an operator; dead letters come in two pages
    (d1, d2 | d3); task "queued" cannot be requeued."""

    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    def ListAgents(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("ListAgents", request, context)
        agents = [
            admin_pb2.Agent(id="host-a-1", concurrency=2),
            admin_pb2.Agent(id="host-b-1", region="eu", running_task_ids=["t1"]),
        ]
        return admin_pb2.ListAgentsResponse(agents=agents)

    def DrainAgent(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("DrainAgent", request, context)
        if request.id == "gone":
            context.abort(grpc.StatusCode.NOT_FOUND, "agent 'gone' not found")
        if request.id == "shared":
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                "only an admin of the bootstrap tenant may manage the shared fleet of agents",
            )
        return admin_pb2.Agent(id=request.id, draining=True)

    def ListDeadLetters(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("ListDeadLetters", request, context)
        if request.page_token == "":
            ids, token = ["d1", "d2"], "page2"
        elif request.page_token == "empty":
            ids, token = [], ""
        else:
            ids, token = ["d3"], ""
        letters = [
            admin_pb2.DeadLetter(
                task=tasks_pb2.Task(id=task_id, status=tasks_pb2.TASK_STATUS_FAILED)
            )
            for task_id in ids
        ]
        return admin_pb2.ListDeadLettersResponse(dead_letters=letters, next_page_token=token)

    def GetFleetStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("GetFleetStatus", request, context)
        return fleet_status(request.window_minutes)

    def RequeueDeadLetter(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("RequeueDeadLetter", request, context)
        if request.task_id == "queued":
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "task 'queued' is TASK_STATUS_QUEUED: only a FAILED task can be requeued",
            )
        return tasks_pb2.Task(id=request.task_id, status=tasks_pb2.TASK_STATUS_QUEUED, attempts=3)


@dataclass
class FakeFarm:
    """The three fake services, each on its own port, with health SERVING."""

    auth_port: int
    storage_port: int
    scheduler_port: int
    calls: Calls
    servers: list[grpc.Server]
    healths: list[health.HealthServicer]
    # The fake auth's edge check (HTTP).
    check_port: int
    check_server: ThreadingHTTPServer

    def set_serving(self, serving: bool) -> None:
        statuses = health_pb2.HealthCheckResponse
        status = statuses.SERVING if serving else statuses.NOT_SERVING
        for servicer in self.healths:
            servicer.set("", status)

    def stop(self) -> None:
        for server in self.servers:
            server.stop(grace=None)
        self.check_server.shutdown()
        self.check_server.server_close()


def _server(port: int, *adders: Any) -> tuple[grpc.Server, health.HealthServicer]:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        options=[("grpc.max_send_message_length", 65 * 1024 * 1024)],
    )
    for add, servicer in adders:
        add(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, health_servicer


def start_fake_farm() -> FakeFarm:
    """Starts fake auth (with its edge check), storage (with ingest) and scheduler."""
    calls = Calls()
    ports = free_ports(4)
    auth = _server(ports[0], (auth_pb2_grpc.add_AuthServiceServicer_to_server, FakeAuth(calls)))
    check_server = start_fake_check(calls, ports[3])
    storage = _server(
        ports[1],
        # A partial fake: the generated base answers UNIMPLEMENTED for the RPCs it leaves out.
        (artifacts_pb2_grpc.add_ArtifactServiceServicer_to_server, FakeArtifacts(calls)),  # type: ignore[abstract]
        # A partial fake: the generated base answers UNIMPLEMENTED for the RPCs it leaves out.
        (ingest_pb2_grpc.add_ArtifactIngestServiceServicer_to_server, FakeIngest(calls)),  # type: ignore[abstract]
    )
    scheduler = _server(
        ports[2], (tasks_pb2_grpc.add_TaskServiceServicer_to_server, FakeTasks(calls))
    )
    servers = [auth[0], storage[0], scheduler[0]]
    healths = [auth[1], storage[1], scheduler[1]]
    return FakeFarm(ports[0], ports[1], ports[2], calls, servers, healths, ports[3], check_server)


def start_single_server() -> tuple[grpc.Server, int, Calls]:
    """All the fake public services on one port, as a client sees them behind Envoy."""
    calls = Calls()
    port = free_port()
    server, _ = _server(
        port,
        (auth_pb2_grpc.add_AuthServiceServicer_to_server, FakeAuth(calls)),
        # A partial fake: the generated base answers UNIMPLEMENTED for the RPCs it leaves out.
        (artifacts_pb2_grpc.add_ArtifactServiceServicer_to_server, FakeArtifacts(calls)),  # type: ignore[abstract]
        (tasks_pb2_grpc.add_TaskServiceServicer_to_server, FakeTasks(calls)),
        (admin_pb2_grpc.add_AdminServiceServicer_to_server, FakeAdmin(calls)),
    )
    return server, port, calls
