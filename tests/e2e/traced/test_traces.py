"""One trace per task across the whole farm, kept by the trace sink of `farm up --traces`.

On the package's traced farm (conftest.py): one agent, every process and Envoy
exporting to the launcher's OTLP/gRPC sink on a free port; the tests read the sink's
files.
"""

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from farm_cli.launcher.farm import LocalFarm
from farm_cli.main import main
from farm_cli.traces.spans import kept_traces, read_trace
from farm_core.trace_context import TRACEPARENT, new_traceparent, span_context_of, trace_id_of
from tests.e2e.conftest import Client, fresh, unique_label
from tests.e2e.traced.conftest import SESSION_MIN_SECONDS
from tests.e2e.traced.kept_traces import SPANS_WITHIN, Trace, kept, kept_span
from tests.helpers import eventually
from tests.pages import Site
from tests.webhook_receiver import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral, pytest.mark.slow]


def edge_line(farm: LocalFarm, *parts: str) -> str:
    """Envoy's access log line holding every one of `parts`, once Envoy has written it."""

    def found() -> str | None:
        lines = (farm.log_dir / "envoy.log").read_text().splitlines()
        return next((line for line in lines if all(part in line for part in parts)), None)

    return eventually(found, message=f"Envoy logged no line with {parts}")


def test_one_task_is_one_trace_from_the_caller_to_its_artifact(
    traced_farm: LocalFarm, client: Client, site: Site
) -> None:
    caller = new_traceparent()
    response = client.http.post(
        "/v1/tasks:run",
        json=fresh({"url": site.url("/page"), "screenshot": {}, "labels": unique_label()}),
        headers={TRACEPARENT: caller},
    )
    assert response.status_code == 200, response.text
    task = response.json()
    assert task["status"] == "TASK_STATUS_SUCCEEDED"
    trace_id = task["traceId"]
    assert trace_id == span_context_of(caller).trace_id.to_bytes(16, "big").hex()
    run_task = "/farm.tasks.v1.TaskService/RunTask"
    upload = "/farm.storage.v1.ArtifactIngestService/UploadArtifact"
    check = "ext_authz check"
    # Each process sends its own spans (within a tenth of a second on this farm), so the
    # wait names a span of every one asserted on below.
    trace = kept(traced_farm, trace_id, "ingress", check, run_task, "task.attempt", "PUT", upload)
    assert {span.service for span in trace.spans} == {
        "farm-envoy",
        "farm-auth",
        "farm-scheduler",
        "farm-agent",
        "farm-storage",
    }

    # The edge continues the caller's span, asks auth, then calls the scheduler.
    (ingress,) = [s for s in trace.spans if s.service == "farm-envoy" and s.kind == "SERVER"]
    assert ingress.parentSpanId == caller.split("-")[2]
    (authz,) = trace.children(ingress, "async auth_check egress")
    auth_check = trace.one(check, "farm-auth")
    assert auth_check.parentSpanId == authz.spanId
    scheduler_call = trace.one(run_task, "farm-scheduler")
    assert scheduler_call.parentSpanId == ingress.spanId
    assert trace.children(scheduler_call, "INSERT"), "the task's row is written in the call"

    # The publish hands the context to the agent over NATS.
    (publish,) = trace.children(scheduler_call, "task.publish")
    assert publish.links == [], "a link to its own parent says nothing"
    attempt = trace.one("task.attempt")
    assert attempt.parentSpanId == publish.spanId
    assert trace.one("task.queued").parentSpanId == publish.spanId
    assert attempt.attributes["farm.outcome"] == "succeeded"
    (browser,) = trace.children(attempt, "browser.run")
    assert {span.name for span in trace.children(browser)} == {
        "browser.acquire",
        "page.navigate",
        "page.capture",
    }
    assert any(event.name == "egress.allowed" for event in browser.events)

    # The upload: the agent's call, storage's handling, its SQL and its S3 PUT.
    (uploading,) = trace.children(attempt, "artifact.upload")
    (client_call,) = trace.children(uploading, upload)
    storage_call = trace.one(upload, "farm-storage")
    assert storage_call.parentSpanId == client_call.spanId
    assert trace.one("PUT", "farm-storage").parentSpanId == storage_call.spanId
    assert trace.children(storage_call, "INSERT")

    # Each event the agent reports is applied by the scheduler in the same trace.
    for report in trace.named("task.report"):
        assert report.parentSpanId == attempt.spanId
        (applied,) = trace.children(report, "task.event.apply")
        assert applied.service == "farm-scheduler"

    # Every line the agent logged about the task names its trace.
    lines = (traced_farm.log_dir / "agent-1.log").read_text().splitlines()
    about_task = [line for line in lines if f'"task_id": "{task["id"]}"' in line]
    assert about_task
    assert all(f'"trace_id": "{trace_id}"' in line for line in about_task)

    # Envoy's access log line of the call ends with its trace id.
    assert edge_line(traced_farm, "/v1/tasks:run", trace_id).endswith(f'"{trace_id}"')


def test_envoy_logs_a_trace_id_only_for_a_request_it_traces(
    traced_farm: LocalFarm, client: Client
) -> None:
    label = unique_label()["test"]
    # A gRPC health probe is never traced, even when its caller's traceparent is sampled.
    probe = new_traceparent()
    target = traced_farm.envoy_url.removeprefix("http://")
    options = [("grpc.primary_user_agent", f"probe-{label}")]
    with grpc.insecure_channel(target, options=options) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10, metadata=[(TRACEPARENT, probe)]
        )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    # A caller's trace it chose not to sample (flag 00) is not traced either.
    unsampled = new_traceparent().removesuffix("-01") + "-00"
    traced = new_traceparent()
    for traceparent, agent in ((unsampled, "unsampled"), (traced, "traced")):
        headers = {TRACEPARENT: traceparent, "user-agent": f"{agent}-{label}"}
        assert client.http.get("/v1/whoami", headers=headers).status_code == 200

    assert edge_line(traced_farm, "/grpc.health.v1.Health/", f"probe-{label}").endswith('"-"')
    assert edge_line(traced_farm, f"unsampled-{label}").endswith('"-"')
    traced_id = trace_id_of(traced)
    assert edge_line(traced_farm, f"traced-{label}").endswith(f'"{traced_id}"')
    # Envoy sends its spans in the order they end: once a later call's is kept, a
    # span of the probe or the unsampled call would be too.
    kept(traced_farm, traced_id, "ingress")
    for untraced in (probe, unsampled):
        assert read_trace(traced_farm.config.traces_folder, trace_id_of(untraced)) == []


def test_a_retried_task_shows_both_attempts_in_its_trace(
    traced_farm: LocalFarm, client: Client, site: Site
) -> None:
    page = f"retried-{unique_label()['test']}"
    task = client.run(
        {
            "url": site.url(f"/flaky/{page}?fails=1"),
            "content": {},
            "failOnHttpError": True,
            "maxAttempts": 2,
        }
    )
    assert task["status"] == "TASK_STATUS_SUCCEEDED"
    assert task["attempts"] == 2

    def both_attempts() -> Trace | None:
        trace = kept(traced_farm, task["traceId"], "task.attempt")
        return trace if len(trace.named("task.attempt")) == 2 else None

    trace = eventually(both_attempts, within=SPANS_WITHIN, message="both attempts were not kept")
    (publish,) = trace.named("task.publish")
    first, second = sorted(trace.named("task.attempt"), key=lambda s: s.startTimeUnixNano)
    assert (first.attributes["farm.attempt"], second.attributes["farm.attempt"]) == (1, 2)
    assert (first.attributes["farm.outcome"], second.attributes["farm.outcome"]) == (
        "retried",
        "succeeded",
    )
    assert (first.status, second.status) == ("ERROR", "UNSET")
    assert "tried again" in first.statusMessage
    assert first.parentSpanId == second.parentSpanId == publish.spanId
    (failed_run,) = trace.children(first, "browser.run")
    assert failed_run.status == "ERROR"
    assert "HTTP_ERROR" in failed_run.statusMessage
    assert not trace.children(first, "artifact.upload")
    assert trace.children(second, "artifact.upload")


def test_a_task_answered_from_the_cache_is_named_in_its_trace(
    traced_farm: LocalFarm, client: Client, site: Site
) -> None:
    page = site.url(f"/page?cached={unique_label()['test']}")
    spec = {"url": page, "content": {}, "cacheTtlSeconds": 600}
    first = client.run(spec)
    cached = client.run(spec)
    assert (first["cached"], cached.get("cached")) == (False, True)
    assert cached["traceId"] != first["traceId"]
    trace = kept(traced_farm, cached["traceId"], "task.cached")
    call = trace.one("/farm.tasks.v1.TaskService/RunTask", "farm-scheduler")
    (named,) = trace.children(call, "task.cached")
    assert named.attributes["farm.task_id"] == cached["id"]
    assert not trace.named("task.publish")


def test_a_session_is_one_trace_with_a_span_per_command(
    traced_farm: LocalFarm,
    client: Client,
    site: Site,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    http = client.http
    session = http.post("/v1/sessions", json={}).json()
    for _ in range(2):
        ran = http.post(f"/v1/sessions/{session['id']}:run", json={"url": site.url("/page")})
        assert ran.status_code == 200, ran.text
    assert http.post(f"/v1/sessions/{session['id']}:close").status_code == 200

    def session_trace() -> Trace | None:
        for trace_id in kept_traces(traced_farm.config.traces_folder):
            spans = read_trace(traced_farm.config.traces_folder, trace_id)
            mine = [
                s
                for s in spans
                if s.attributes.get("farm.session_id") == session["id"]
                and s.service == "farm-agent"
            ]
            if len(mine) == 4:
                return Trace(spans)
        return None

    trace = eventually(session_trace, within=SPANS_WITHIN, message="the session's spans")
    create = trace.one("/farm.sessions.v1.SessionService/CreateSession", "farm-scheduler")
    opened = trace.one("session.open", "farm-agent")
    (order,) = trace.children(create, "session.order.open")
    assert order.spanId == opened.parentSpanId
    # Each order names its session, as the agent's spans do: a call's trace (an audit
    # record's traceId) says which session it drove.
    assert order.attributes["farm.session_id"] == session["id"]
    commands = trace.named("session.command")
    assert len(commands) == 2
    for command in [*commands, trace.one("session.close")]:
        assert command.parentSpanId == opened.spanId
        ((linked_trace, linked_span),) = command.links
        assert linked_trace != opened.traceId
        # The link is the scheduler's order in the call's trace (sent once answered).
        linked = kept_span(traced_farm, linked_trace, linked_span)
        assert linked.name.startswith("session.order.")
        assert linked.service == "farm-scheduler"
        assert linked.attributes["farm.session_id"] == session["id"]
    for command in commands:
        assert {span.name for span in trace.children(command)} >= {"page.navigate"}

    # The session names its trace, as a task does, and `farm task trace` finds it by id.
    assert session["traceId"] == opened.traceId == create.traceId
    assert http.get(f"/v1/sessions/{session['id']}").json()["traceId"] == opened.traceId
    monkeypatch.setenv("FARM_URL", traced_farm.envoy_url)
    monkeypatch.setenv("FARM_API_KEY", traced_farm.admin_key)
    monkeypatch.setenv("FARM_HOME", str(traced_farm.home))
    monkeypatch.chdir(Path(traced_farm.home))
    assert main(["task", "trace", session["id"]]) == 0
    drawn = capsys.readouterr().out
    assert drawn.startswith(f"trace {opened.traceId}: ")
    assert "session.command" in drawn


def test_a_session_the_agent_closes_itself_ends_its_trace_with_its_close_and_recording(
    traced_farm: LocalFarm, client: Client, site: Site
) -> None:
    http = client.http
    spec = {"idleTimeoutSeconds": SESSION_MIN_SECONDS, "record": True}
    session = http.post("/v1/sessions", json=spec).json()
    ran = http.post(f"/v1/sessions/{session['id']}:run", json={"url": site.url("/page")})
    assert ran.status_code == 200, ran.text

    def closed() -> dict[str, object] | None:
        got: dict[str, object] = http.get(f"/v1/sessions/{session['id']}").json()
        return got if got["state"] == "SESSION_STATE_CLOSED" else None

    ended = eventually(closed, within=60.0, message="the idle session's close")
    assert ended["closeReason"] == "IDLE_TIMEOUT"
    trace = kept(traced_farm, session["traceId"], "session.open", "session.close")
    opened = trace.one("session.open", "farm-agent")
    close = trace.one("session.close", "farm-agent")
    # No order asked for it: a child of the open with no link, the recording's upload in it.
    assert close.parentSpanId == opened.spanId
    assert close.links == []
    assert close.attributes["farm.session_id"] == session["id"]
    (upload,) = trace.children(close, "artifact.upload")
    assert upload.attributes["farm.artifact.name"] == "recording.webm"


def test_a_tasks_callbacks_are_in_its_trace_and_carry_it_to_the_receiver(
    traced_farm: LocalFarm, client: Client, site: Site
) -> None:
    with Receiver(500, 200).running() as receiver:
        spec = fresh({"url": site.url("/page"), "content": {}, "callbackUrl": receiver.url})
        task = client.create(spec)
        eventually(lambda: len(receiver.received) == 2, within=30, message="both callback attempts")
    trace_id = task["traceId"]

    def both_callbacks() -> Trace | None:
        trace = kept(traced_farm, trace_id, "task.callback")
        return trace if len(trace.named("task.callback")) == 2 else None

    trace = eventually(both_callbacks, within=SPANS_WITHIN, message="both callback spans")
    create = trace.one("/farm.tasks.v1.TaskService/CreateTask", "farm-scheduler")
    failed, delivered = sorted(trace.named("task.callback"), key=lambda s: s.startTimeUnixNano)
    for number, span, status in ((1, failed, 500), (2, delivered, 200)):
        assert span.service == "farm-scheduler"
        assert span.kind == "CLIENT"
        assert span.parentSpanId == create.spanId
        assert span.attributes["farm.task_id"] == task["id"]
        assert span.attributes["farm.callback.attempt"] == number
        assert span.attributes["http.response.status_code"] == status
    assert failed.status == "ERROR"
    assert delivered.status != "ERROR"
    # Each POST carries its own span's context: the receiver's work joins the trace.
    sent = [span_context_of(r.headers.get(TRACEPARENT, "")) for r in receiver.received]
    assert [format(c.span_id, "016x") for c in sent] == [failed.spanId, delivered.spanId]
    assert {format(c.trace_id, "032x") for c in sent} == {trace_id}
    # The scheduler's lines about the delivery name the task's trace.
    lines = (traced_farm.log_dir / "scheduler.log").read_text().splitlines()
    delivered_line = [
        line for line in lines if f"delivered the callback of task {task['id']}" in line
    ]
    assert delivered_line and f'"trace_id": "{trace_id}"' in delivered_line[0]


def test_farm_task_trace_draws_the_task_as_a_waterfall(
    traced_farm: LocalFarm,
    client: Client,
    site: Site,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    task = client.run({"url": site.url("/page"), "pdf": {}})
    kept(traced_farm, task["traceId"], "ingress", "artifact.upload", "PUT")
    monkeypatch.setenv("FARM_URL", traced_farm.envoy_url)
    monkeypatch.setenv("FARM_API_KEY", traced_farm.admin_key)
    monkeypatch.setenv("FARM_HOME", str(traced_farm.home))
    monkeypatch.chdir(Path(traced_farm.home))
    assert main(["task", "trace", task["id"], "--events"]) == 0
    drawn = capsys.readouterr().out.splitlines()
    assert drawn[0].startswith(f"trace {task['traceId']}: ")
    assert "farm-envoy" in drawn[2]
    rows = "\n".join(drawn)
    for name in ("task.publish", "task.attempt", "page.capture (action=pdf)", "artifact.upload"):
        assert name in rows
    assert "· egress.allowed" in rows
