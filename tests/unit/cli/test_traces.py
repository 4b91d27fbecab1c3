"""The local trace sink, its files, the waterfall, `farm task trace`, and the CLI's traceparent."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, format_trace_id

from farm_cli.main import main
from farm_cli.traces.sink import TraceSink, remove_old_traces
from farm_cli.traces.spans import SpanRecord, append_spans, kept_traces, read_trace
from farm_cli.traces.waterfall import waterfall
from farm_core.settings_load import BAD_SETTINGS_EXIT_CODE
from farm_core.trace_context import TRACEPARENT, new_traceparent, span_context_of
from tests.unit.cli.fake_calls import Calls
from tests.unit.cli.fake_services import TRACED_TASK_TRACE_ID

MS = 1_000_000


def finished_spans(service: str) -> tuple[ReadableSpan, ...]:
    """A small trace as one service's SDK would export it: a call, a child with an event."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span("RunTask", kind=SpanKind.SERVER),
        tracer.start_as_current_span("task.attempt", attributes={"farm.attempt": 2}) as child,
    ):
        child.add_event("egress.refused", {"farm.egress.target": "10.0.0.1:80"})
        child.set_status(Status(StatusCode.ERROR, "TIMEOUT"))
    provider.shutdown()
    return memory.get_finished_spans()


async def test_the_sink_keeps_each_trace_s_spans_in_its_file(tmp_path: Path) -> None:
    spans = finished_spans("farm-scheduler")
    async with TraceSink(tmp_path / "traces") as sink:
        exporter = OTLPSpanExporter(endpoint=sink.endpoint, insecure=True)
        assert await asyncio.to_thread(exporter.export, spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
        assert sink.spans_received == 2
    trace_id = format_trace_id(spans[0].context.trace_id)
    assert kept_traces(tmp_path / "traces") == [trace_id]
    child, call = read_trace(tmp_path / "traces", trace_id)
    assert (call.name, call.kind, call.service, call.parentSpanId) == (
        "RunTask",
        "SERVER",
        "farm-scheduler",
        "",
    )
    assert child.parentSpanId == call.spanId
    assert child.attributes == {"farm.attempt": 2}
    assert [(e.name, e.attributes) for e in child.events] == [
        ("egress.refused", {"farm.egress.target": "10.0.0.1:80"})
    ]
    assert (child.status, child.statusMessage) == ("ERROR", "TIMEOUT")
    assert child.duration_ns == child.endTimeUnixNano - child.startTimeUnixNano


def test_old_trace_files_go_when_the_sink_starts(tmp_path: Path) -> None:
    old, new = record("a" * 32, "1", "", "old", 0, 1), record("b" * 32, "2", "", "new", 0, 1)
    append_spans(tmp_path, {old.traceId: [old], new.traceId: [new]})
    week_ago = 8 * 86400
    stale = tmp_path / f"{old.traceId}.jsonl"
    os.utime(stale, (stale.stat().st_atime - week_ago, stale.stat().st_mtime - week_ago))
    assert remove_old_traces(tmp_path, keep_days=7) == 1
    assert kept_traces(tmp_path) == [new.traceId]


def record(
    trace_id: str, span_id: str, parent: str, name: str, start_ms: int, end_ms: int, **extra: object
) -> SpanRecord:
    fields: dict[str, object] = {
        "traceId": trace_id,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "service": "farm-agent",
        "kind": "INTERNAL",
        "startTimeUnixNano": start_ms * MS,
        "endTimeUnixNano": end_ms * MS,
    }
    fields.update(extra)
    return SpanRecord(**fields)  # type: ignore[arg-type]


TRACE = "c" * 32
SPANS = [
    record(TRACE, "s3", "s1", "task.attempt", 300, 900, attributes={"farm.attempt": 2}),
    record(TRACE, "s1", "caller", "ingress", 0, 1000, service="farm-envoy"),
    record(TRACE, "s2", "s1", "task.attempt", 100, 250, attributes={"farm.attempt": 1}),
    record(TRACE, "s4", "s3", "page.navigate", 400, 500, status="ERROR", statusMessage="TIMEOUT"),
]


def test_the_waterfall_nests_spans_under_their_parents_in_time_order() -> None:
    lines = waterfall(SPANS, width=120).splitlines()
    assert lines[0].startswith(f"trace {TRACE}: 4 spans from 2 services")
    names = [line[40:].split("|")[0].rstrip() for line in lines[2:]]
    assert names == [
        "ingress",
        "├─ task.attempt (attempt=1)",
        "└─ task.attempt (attempt=2)",
        "   └─ page.navigate ERROR: TIMEOUT",
    ]
    offsets = [line[:10].strip() for line in lines[2:]]
    assert offsets == ["0.00 ms", "100.0 ms", "300.0 ms", "400.0 ms"]
    bars = [line.split("|")[1] for line in lines[2:]]
    assert len({len(bar) for bar in bars}) == 1
    assert bars[0].strip() == "█" * len(bars[0])
    # The second attempt starts at 30 % of the trace and lasts 60 % of it.
    assert bars[2].index("█") == round(0.3 * len(bars[2]))
    assert bars[2].count("█") == round(0.6 * len(bars[2]))
    assert all(len(line) <= 120 for line in lines[1:])


@pytest.fixture
def fake_farm(calls: Calls, monkeypatch: pytest.MonkeyPatch) -> Calls:
    """The fake services, with no caller's trace in the environment."""
    monkeypatch.delenv("TRACEPARENT", raising=False)
    return calls


def test_farm_task_trace_draws_the_task_s_trace_from_farm_home(
    fake_farm: Calls,
    farm_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FARM_HOME", str(farm_home))
    spans = [
        record(TRACED_TASK_TRACE_ID, "s1", "", "ingress", 0, 10),
        record(TRACED_TASK_TRACE_ID, "s2", "s1", "task.attempt", 2, 8),
    ]
    append_spans(farm_home / "traces", {TRACED_TASK_TRACE_ID: spans})
    assert main(["task", "trace", "traced"]) == 0
    printed = capsys.readouterr().out
    assert f"trace {TRACED_TASK_TRACE_ID}: 2 spans" in printed
    assert "└─ task.attempt" in printed
    assert main(["task", "trace", "traced", "--json"]) == 0
    kept = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [span["name"] for span in kept] == ["ingress", "task.attempt"]


def test_farm_task_trace_of_a_task_draws_its_own_calls_of_a_shared_trace(
    fake_farm: Calls, farm_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `farm task run --from` sends every RunTask of the run in one trace (the command's).
    def call(top: str, task_id: str, start: int) -> list[SpanRecord]:
        return [
            record(TRACED_TASK_TRACE_ID, top, "cli", "ingress", start, start + 9),
            record(TRACED_TASK_TRACE_ID, f"{top}-rpc", top, "RunTask", start + 1, start + 8),
            record(
                TRACED_TASK_TRACE_ID,
                f"{top}-publish",
                f"{top}-rpc",
                "task.publish",
                start + 2,
                start + 3,
                attributes={"farm.task_id": task_id},
            ),
            record(TRACED_TASK_TRACE_ID, f"{top}-run", f"{top}-publish", "task.attempt", 3, 7),
        ]

    spans = call("a", "other", 0) + call("b", "traced", 10) + call("c", "another", 20)
    append_spans(farm_home, {TRACED_TASK_TRACE_ID: spans})
    assert main(["task", "trace", "traced", "--traces-dir", str(farm_home), "--json"]) == 0
    kept = [json.loads(line)["spanId"] for line in capsys.readouterr().out.splitlines()]
    assert kept == ["b", "b-rpc", "b-publish", "b-run"]
    assert main(["task", "trace", TRACED_TASK_TRACE_ID, "--traces-dir", str(farm_home)]) == 0
    assert f"trace {TRACED_TASK_TRACE_ID}: 12 spans" in capsys.readouterr().out


def test_farm_task_trace_of_a_batch_task_leaves_out_the_other_tasks_of_its_call(
    fake_farm: Calls, farm_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One CreateTasks call publishes every task of the batch: one call, several tasks.
    trace = TRACED_TASK_TRACE_ID
    spans = [
        record(trace, "in", "cli", "ingress", 0, 30),
        record(trace, "rpc", "in", "CreateTasks", 1, 29),
        record(trace, "sql", "rpc", "INSERT scheduler.db", 2, 3),
    ]
    for task_id in ("other", "traced"):
        task = {"farm.task_id": task_id}
        spans += [
            record(trace, f"{task_id}-pub", "rpc", "task.publish", 4, 5, attributes=task),
            record(
                trace, f"{task_id}-run", f"{task_id}-pub", "task.attempt", 6, 20, attributes=task
            ),
            record(trace, f"{task_id}-nav", f"{task_id}-run", "page.navigate", 7, 9),
            record(
                trace, f"{task_id}-rep", f"{task_id}-run", "task.report", 19, 20, attributes=task
            ),
            record(
                trace,
                f"{task_id}-app",
                f"{task_id}-rep",
                "task.event.apply",
                21,
                22,
                attributes=task,
            ),
            record(trace, f"{task_id}-upd", f"{task_id}-app", "UPDATE scheduler.db", 21, 22),
        ]
    append_spans(farm_home, {trace: spans})
    assert main(["task", "trace", "traced", "--traces-dir", str(farm_home), "--json"]) == 0
    kept = [json.loads(line)["spanId"] for line in capsys.readouterr().out.splitlines()]
    assert kept == ["in", "rpc", "sql"] + [
        f"traced-{step}" for step in ("pub", "run", "nav", "rep", "app", "upd")
    ]


def test_farm_task_trace_draws_a_trace_id_it_kept_without_asking_for_a_task(
    fake_farm: Calls, farm_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The trace id of an audit record or a log line (a session's, a call's) is no task's.
    session_trace = "5e55" * 8
    calls_before = len(fake_farm.seen)
    append_spans(
        farm_home, {session_trace: [record(session_trace, "s1", "", "session.open", 0, 9)]}
    )
    assert main(["task", "trace", session_trace, "--traces-dir", str(farm_home)]) == 0
    assert f"trace {session_trace}: 1 spans" in capsys.readouterr().out
    assert "GetTask" not in [name for name, _, _ in fake_farm.seen[calls_before:]]


def test_farm_task_trace_says_why_it_has_nothing_to_draw(
    fake_farm: Calls, farm_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["task", "trace", "untraced", "--traces-dir", str(farm_home)]) == 1
    assert "has no trace id" in capsys.readouterr().err
    assert main(["task", "trace", "traced", "--traces-dir", str(farm_home)]) == 1
    assert f"no spans of trace {TRACED_TASK_TRACE_ID}" in capsys.readouterr().err


def test_each_command_starts_a_trace_or_continues_traceparent(
    fake_farm: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["task", "get", "t1"]) == 0
    first = fake_farm.last("GetTask")[1][TRACEPARENT]
    assert main(["task", "get", "t1"]) == 0
    second = fake_farm.last("GetTask")[1][TRACEPARENT]
    assert span_context_of(first).is_valid
    assert span_context_of(first).trace_id != span_context_of(second).trace_id
    caller = new_traceparent()
    monkeypatch.setenv("TRACEPARENT", caller)
    assert main(["task", "get", "t1"]) == 0
    assert fake_farm.last("GetTask")[1][TRACEPARENT] == caller
    monkeypatch.setenv("TRACEPARENT", "not a traceparent")
    assert main(["task", "get", "t1"]) == 0
    assert span_context_of(fake_farm.last("GetTask")[1][TRACEPARENT]).is_valid


def test_the_sink_given_a_bad_setting_stops_naming_it_without_a_traceback(tmp_path: Path) -> None:
    environ = {**os.environ, "FARM_EVENT_LOOP": "bogus"}
    command = [sys.executable, "-m", "farm_cli.traces", "--folder", str(tmp_path), "--listen"]
    refusal = subprocess.run(
        [*command, "127.0.0.1:0"], env=environ, capture_output=True, text=True, timeout=60
    )
    assert refusal.returncode == BAD_SETTINGS_EXIT_CODE, refusal.stderr
    assert "traces cannot start: 1 bad setting(s)" in refusal.stderr
    assert "FARM_EVENT_LOOP='bogus'" in refusal.stderr
    assert "Traceback" not in refusal.stderr
