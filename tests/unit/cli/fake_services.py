"""In-process stand-ins for the farm's services, to test the CLI and Envoy's configuration.

They answer the public RPCs with canned data and record what they were sent, and
the fake auth service answers Envoy's ext_authz Check: GOOD_KEY passes (with an
identity header), CHECK_FAILS_KEY makes the check fail, OVER_LIMIT_KEY is refused
with 429 as the auth service refuses it, any other key is refused with 401.
"""

import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from google.api import httpbody_pb2  # type: ignore[import-untyped]
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from farm.admin.v1 import admin_pb2, admin_pb2_grpc
from farm.auth.v1 import auth_pb2, auth_pb2_grpc
from farm.storage.v1 import artifacts_pb2, artifacts_pb2_grpc, ingest_pb2, ingest_pb2_grpc
from farm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from farm_auth.authz import CONTENT_TYPE_HEADER, Verdict, denied, limited
from farm_auth.check_http import http_answer
from farm_cli.launcher.processes import free_port, free_ports
from tests.unit.cli.fake_fleet import fleet_status

GOOD_KEY = "bf_good-key"
# A key whose check fails (the auth service errs), as when it is down.
CHECK_FAILS_KEY = "bf_check-fails"
# A key whose check is never answered: the fake holds it until the test lets go, past
# Envoy's 2 s check timeout, then closes the connection.
CHECK_HANGS_KEY = "bf_check-hangs"
# A key over its rate limit: refused as the auth service refuses it.
OVER_LIMIT_KEY = "bf_over-limit"
IDENTITY_FOR_GOOD_KEY = "identity-token-for-good-key"
TRACED_TASK_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@dataclass
class Calls:
    """What the fake services were sent: (method, request, metadata) in order."""

    seen: list[tuple[str, Any, dict[str, str]]] = field(default_factory=list)
    # Set to let the checks of CHECK_HANGS_KEY answer.
    hung_check_released: threading.Event = field(default_factory=threading.Event)

    def record(self, method: str, request: Any, context: grpc.ServicerContext) -> None:
        self.seen.append((method, request, dict(context.invocation_metadata())))

    def last(self, method: str) -> tuple[Any, dict[str, str]]:
        for name, request, metadata in reversed(self.seen):
            if name == method:
                return request, metadata
        raise AssertionError(f"{method} was not called; calls: {[c[0] for c in self.seen]}")


@dataclass(frozen=True)
class CheckSeen:
    """One check Envoy asked the fake auth: the method, the path, the headers and the body."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def fake_verdict(authorization: str | None, *, grpc_caller: bool) -> Verdict | None:
    """The fake auth's decision on a key; None: the check fails."""
    if authorization == f"Bearer {CHECK_FAILS_KEY}":
        return None
    if authorization == f"Bearer {OVER_LIMIT_KEY}":
        return limited("API key over-limit is over its rate limit", 1.5, grpc_caller=grpc_caller)
    if authorization == f"Bearer {GOOD_KEY}":
        return Verdict(code=0, identity_token=IDENTITY_FOR_GOOD_KEY)
    return denied("invalid API key", grpc_caller=grpc_caller)


def _check_handler(calls: "Calls") -> type[BaseHTTPRequestHandler]:
    class CheckHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path == "/healthz":
                self._send(200, {}, b"ok\n")
                return
            headers = {name.lower(): value for name, value in self.headers.items()}
            seen = CheckSeen(self.command, self.path, headers, body)
            calls.seen.append(("Check", seen, headers))
            grpc_caller = headers.get(CONTENT_TYPE_HEADER, "").startswith("application/grpc")
            if headers.get("authorization") == f"Bearer {CHECK_HANGS_KEY}":
                calls.hung_check_released.wait(timeout=60)
                # Envoy gave up on this check long ago: it gets no answer at all.
                self.close_connection = True
                return
            verdict = fake_verdict(headers.get("authorization"), grpc_caller=grpc_caller)
            if verdict is None:
                self._send(500, {}, b"the key store is unreachable")
                return
            answer = http_answer(verdict)
            sent = {name.lower(): value for name, value in answer.headers.items()}
            self._send(answer.status, sent, bytes(answer.body or b""))  # type: ignore[arg-type]

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in ("content-length", "content-type"):
                    self.send_header(name, value)
            if "content-type" in headers:
                self.send_header("content-type", headers["content-type"])
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        # The names http.server dispatches each method to.
        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer  # noqa: N815

    return CheckHandler


def start_fake_check(calls: "Calls", port: int) -> ThreadingHTTPServer:
    """The fake auth's edge check, served over HTTP in a thread of its own."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _check_handler(calls))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class FakeAuth(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    def WhoAmI(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("WhoAmI", request, context)
        metadata = dict(context.invocation_metadata())
        return auth_pb2.WhoAmIResponse(
            tenant="acme", key_id=metadata.get("x-farm-identity", ""), scopes=["admin"]
        )

    def CreateApiKey(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("CreateApiKey", request, context)
        key = auth_pb2.ApiKey(id="key1", name=request.name, scopes=request.scopes)
        return auth_pb2.CreateApiKeyResponse(api_key=key, secret="bf_new-secret")

    def ListApiKeys(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("ListApiKeys", request, context)
        return auth_pb2.ListApiKeysResponse(api_keys=[auth_pb2.ApiKey(id="key1")])

    def RevokeApiKey(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("RevokeApiKey", request, context)
        return auth_pb2.ApiKey(id=request.id)

    def RevokeCredential(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("RevokeCredential", request, context)
        return auth_pb2.RevokedCredential(id=request.id, subject=request.subject)

    def RotateApiKey(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("RotateApiKey", request, context)
        key = auth_pb2.ApiKey(id=request.id)
        return auth_pb2.CreateApiKeyResponse(api_key=key, secret="bf_rotated-secret")

    def UpdateApiKey(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("UpdateApiKey", request, context)
        return auth_pb2.ApiKey(id=request.id)

    def GetTenant(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("GetTenant", request, context)
        return auth_pb2.Tenant(name=request.name)

    def UpdateTenantLimits(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("UpdateTenantLimits", request, context)
        return auth_pb2.Tenant(name=request.name)


class FakeTasks(tasks_pb2_grpc.TaskServiceServicer):
    """Task "missing" is NOT_FOUND, "traced" has a trace id; ListTasks has two pages."""

    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    def CreateTask(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("CreateTask", request, context)
        return tasks_pb2.Task(id="t1", status=tasks_pb2.TASK_STATUS_QUEUED, spec=request.spec)

    def CreateTasks(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Queues every spec but those with an ftp URL, which are refused by index."""
        self.calls.record("CreateTasks", request, context)
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
        return tasks_pb2.Task(id="t1", status=tasks_pb2.TASK_STATUS_SUCCEEDED, spec=request.spec)

    def GetTask(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("GetTask", request, context)
        if request.id == "missing":
            context.abort(grpc.StatusCode.NOT_FOUND, "task missing not found")
        trace_id = TRACED_TASK_TRACE_ID if request.id == "traced" else ""
        return tasks_pb2.Task(
            id=request.id, status=tasks_pb2.TASK_STATUS_RUNNING, trace_id=trace_id
        )

    def ListTasks(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("ListTasks", request, context)
        if request.page_token == "":
            tasks = [tasks_pb2.Task(id="t1"), tasks_pb2.Task(id="t2")]
            return tasks_pb2.ListTasksResponse(tasks=tasks, next_page_token="page2")
        return tasks_pb2.ListTasksResponse(tasks=[tasks_pb2.Task(id="t3")])

    def CancelTask(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("CancelTask", request, context)
        return tasks_pb2.Task(id=request.id, status=tasks_pb2.TASK_STATUS_CANCELLED)

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
            yield tasks_pb2.TaskEvent(task_id=request.id, status=status)


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
