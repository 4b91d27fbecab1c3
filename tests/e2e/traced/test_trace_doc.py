"""docs/tracing.md's span and attribute tables, held to the spans a traced farm makes.

The package's traced farm (conftest.py: one agent, the trace sink of `farm up --traces`)
runs a task with a step and a callback, and a recorded session with a command; every
span of the farm's own scope it keeps (these and any the package's other tests made)
must be in the span table with its service, kind and parent, and carry the attributes
the attribute table gives it.
"""

import re

import pytest

from farm_cli.launcher.farm import LocalFarm
from farm_cli.traces.spans import SpanRecord, kept_traces, read_trace
from farm_core.trace_context import TRACEPARENT, new_traceparent, trace_id_of
from tests.e2e.conftest import Client, fresh, http_client
from tests.farms import ROOT
from tests.helpers import eventually
from tests.pages import Site
from tests.webhook_receiver import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral, pytest.mark.slow]

TRACING_DOC = ROOT / "docs" / "tracing.md"
FARM_SPAN = re.compile(r"(task|browser|page|artifact|session)\.[a-z_.]+")
# Attributes the table gives with a condition of their own (an answer, a NATS hop).
CONDITIONAL = {"http.response.status_code", "messaging.system", "messaging.destination.name"}


def table(heading: str) -> list[list[str]]:
    """The cells of each row of the first table after the line `heading`."""
    lines = TRACING_DOC.read_text().splitlines()
    start = lines.index(heading)
    rows: list[list[str]] = []
    for line in lines[start + 1 :]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows[2:]


def documented_parents() -> dict[str, set[str]]:
    """The farm's own spans of the span table: name → the parents it names.

    A span name in backticks (before any "(link: …)"); "RPC" for a parent given as
    an RPC (the creating RPC, the session RPC).
    """
    parents: dict[str, set[str]] = {}
    for name_cell, _, _, parent, *_ in table("## Spans"):
        names = re.findall(r"`([^`]+)`", name_cell)
        if not FARM_SPAN.fullmatch(names[0]):
            continue
        named = set(re.findall(r"`([^`]+)`", parent.split("(")[0]))
        stem = names[0].rsplit(".", 1)[0]
        for name in names:
            full = stem + name if name.startswith(".") else name
            parents[full] = named or ({"RPC"} if "RPC" in parent else set())
    return parents


def documented_spans() -> dict[str, tuple[str, set[str]]]:
    """The farm's own spans of the span table: name → (service, kinds)."""
    spans: dict[str, tuple[str, set[str]]] = {}
    for name_cell, service, kind, *_ in table("## Spans"):
        names = re.findall(r"`([^`]+)`", name_cell)
        if not FARM_SPAN.fullmatch(names[0]):
            continue
        # "`session.order.open`, `.run`": the later names are suffixes of the first's stem.
        stem = names[0].rsplit(".", 1)[0]
        kinds = {
            word.upper()
            for word in re.findall(r"\b(server|client|producer|consumer|internal)\b", kind)
        }
        for name in names:
            spans[stem + name if name.startswith(".") else name] = (f"farm-{service}", kinds)
    return spans


def documented_attributes() -> list[tuple[str, str]]:
    """(attribute, span name or `prefix.*`) each span of that name must carry."""
    pairs: list[tuple[str, str]] = []
    for attributes, spans, _ in table("Attributes of the farm's spans:"):
        for attribute in re.findall(r"`([^`]+)`", attributes):
            if attribute in CONDITIONAL:
                continue
            pairs += [(attribute, span) for span in re.findall(r"`([^`]+)`", spans)]
    return pairs


def carries(span: SpanRecord, pattern: str) -> bool:
    """Whether the attribute table's `pattern` (`task.attempt`, `session.*`) names the span."""
    if pattern.endswith(".*"):
        return span.name.startswith(pattern[:-1])
    return span.name == pattern


def test_the_tables_are_read_from_the_page() -> None:
    spans = documented_spans()
    assert spans["task.attempt"] == ("farm-agent", {"CONSUMER"})
    assert spans["session.order.hold"] == ("farm-scheduler", {"PRODUCER"})
    assert spans["session.close"] == ("farm-agent", {"CONSUMER", "INTERNAL"})
    assert ("farm.session_id", "session.*") in documented_attributes()
    assert ("farm.outcome", "task.attempt") in documented_attributes()
    assert documented_parents()["session.command"] == {"session.open"}
    assert documented_parents()["task.callback"] == {"RPC"}


def test_every_span_of_the_farm_is_documented_with_its_service_kind_and_attributes(
    traced_farm: LocalFarm, site: Site
) -> None:
    with http_client(traced_farm, traced_farm.admin_key) as http:
        client = Client(http, traced_farm.admin_key)
        with Receiver(200).running() as receiver:
            spec = {
                "url": site.url("/page"),
                "steps": [{"wait": {"ms": 10}}],
                "screenshot": {},
                "callbackUrl": receiver.url,
            }
            task = client.run(fresh(spec))
            assert task["status"] == "TASK_STATUS_SUCCEEDED"
            eventually(lambda: receiver.received, within=30, message="the callback")
        session = http.post("/v1/sessions", json={"record": True}).json()
        # A command's and a close's orders are in their calls' traces, which this caller
        # starts.
        running, closing = new_traceparent(), new_traceparent()
        ran = http.post(
            f"/v1/sessions/{session['id']}:run",
            json={"url": site.url("/page")},
            headers={TRACEPARENT: running},
        )
        assert ran.status_code == 200, ran.text
        closed = http.post(f"/v1/sessions/{session['id']}:close", headers={TRACEPARENT: closing})
        assert closed.status_code == 200, closed.text

    folder = traced_farm.config.traces_folder
    # This test's own spans (not only the package's other tests'), and the RPC spans
    # their orders and callback are under: each process sends its spans in batches, and
    # an RPC's span ends (and is sent) after the order it sent.
    sessions = "/farm.sessions.v1.SessionService"
    wanted = {
        task["traceId"]: {
            "task.callback",
            "page.step",
            "page.capture",
            "/farm.tasks.v1.TaskService/RunTask",
        },
        session["traceId"]: {"session.order.open", "session.close", f"{sessions}/CreateSession"},
        trace_id_of(running): {"session.order.run", f"{sessions}/RunSessionCommand"},
        trace_id_of(closing): {"session.order.close", f"{sessions}/CloseSession"},
    }

    def farm_spans() -> list[SpanRecord] | None:
        for trace, names in wanted.items():
            if not names <= {span.name for span in read_trace(folder, trace)}:
                return None
        spans = [span for trace in kept_traces(folder) for span in read_trace(folder, trace)]
        return [span for span in spans if FARM_SPAN.fullmatch(span.name)]

    spans = eventually(farm_spans, within=20.0, message=f"spans {wanted}")
    documented = documented_spans()
    attributes = documented_attributes()
    parents = documented_parents()
    by_id = {span.spanId: span for span in spans}
    rpcs = {
        span.spanId
        for trace in kept_traces(folder)
        for span in read_trace(folder, trace)
        if span.name.startswith("/farm.") and span.kind == "SERVER"
    }
    faults = set()
    for span in spans:
        if span.name not in documented:
            faults.add(f"{span.name}: not in the span table")
            continue
        service, kinds = documented[span.name]
        if (span.service, span.kind) not in {(service, kind) for kind in kinds}:
            faults.add(f"{span.name}: {span.service} {span.kind}, documented {service} {kinds}")
        parent = by_id.get(span.parentSpanId)
        allowed = parents.get(span.name, set())
        if parent is not None and parent.name not in allowed:
            faults.add(f"{span.name}: under {parent.name}, documented under {allowed}")
        if parent is None and not ("RPC" in allowed and span.parentSpanId in rpcs):
            faults.add(f"{span.name}: under no span of the farm, documented under {allowed}")
        for attribute, pattern in attributes:
            if carries(span, pattern) and attribute not in span.attributes:
                faults.add(f"{span.name}: no {attribute}")
    assert faults == set()
