"""A task's page: what a running attempt waits for (Task.status_message) is shown."""

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from farm_console.farm import FarmError
from farm_console.pages import tasks
from farm_console.refusals import refused_keys
from farm_console.settings import ConsoleSettings
from farm_console.views import (
    KEY_COOKIE,
    PREFIX,
    SCOPES_COOKIE,
    NotSignedIn,
    farm_refused,
    not_signed_in,
)

WAITING = "waiting for storage: storage unavailable (S3 is unavailable); retrying"


class OneTaskFarm:
    """A farm whose GetTask answers `task` (as the HTTP API's JSON)."""

    def __init__(self, task: dict[str, Any]) -> None:
        self.task = task
        self.tasks = self
        self.GetTask = "get"

    async def call(self, key: str, method: str, request: Any) -> dict[str, Any]:
        return self.task


def console(task: dict[str, Any], settings: ConsoleSettings | None = None) -> Iterator[TestClient]:
    """The console's task pages, on a farm that answers `task`."""
    app = Starlette(
        routes=[Mount(PREFIX, routes=tasks.routes)],
        exception_handlers={NotSignedIn: not_signed_in, FarmError: farm_refused},
    )
    app.state.farm = OneTaskFarm(task)
    app.state.settings = settings or ConsoleSettings()
    app.state.refused_keys = refused_keys(app.state.settings)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        client.cookies.set(KEY_COOKIE, "bf_key")
        yield client


def running_task(status_message: str) -> dict[str, Any]:
    """A running task as the console reads it (every field, as its farm client asks)."""
    return {
        "id": "t1",
        "status": "TASK_STATUS_RUNNING",
        "statusMessage": status_message,
        "spec": {"url": "https://example.com/", "labels": {}, "maxAttempts": 3},
        "attempts": 1,
        "agentId": "agent-1",
        "cached": False,
        "createTime": "2026-12-07T01:00:00Z",
        "startTime": "2026-12-07T01:00:01Z",
        "finishTime": None,
        "traceId": "",
        "error": None,
        "attemptHistory": [],
        "result": None,
    }


@pytest.mark.parametrize("path", ["/console/tasks/t1", "/console/tasks/t1/part"])
def test_a_running_task_shows_what_its_attempt_waits_for(path: str) -> None:
    for client in console(running_task(WAITING)):
        answer = client.get(path)

        assert answer.status_code == 200
        assert f'<dd id="task-status-message">{WAITING}</dd>' in answer.text


def test_a_task_without_a_note_shows_no_waiting_line() -> None:
    for client in console(running_task("")):
        answer = client.get("/console/tasks/t1")

        assert answer.status_code == 200
        assert "task-status-message" not in answer.text


# Grafana's Explore link to a Tempo trace: JSON, braces and quotes, around {trace_id}.
GRAFANA = 'http://grafana:3000/explore?left=["now-1h","now","Tempo",{"query":"{trace_id}"}]'


def test_a_trace_url_with_braces_of_its_own_links_the_trace() -> None:
    # str.format took the link's own braces for fields: KeyError, and every task page
    # with a trace id answered 500.
    task = {**running_task(""), "traceId": "4bf92f3577b34da6a3ce929d0e0e4736"}
    for client in console(task, ConsoleSettings(trace_url=GRAFANA)):
        answer = client.get("/console/tasks/t1")

        assert answer.status_code == 200
        assert (
            '<a href="http://grafana:3000/explore?left=[&#34;now-1h&#34;,&#34;now&#34;,'
            '&#34;Tempo&#34;,{&#34;query&#34;:&#34;4bf92f3577b34da6a3ce929d0e0e4736&#34;}]"'
        ) in answer.text


def test_a_json_result_shows_its_text_as_written_not_as_escapes() -> None:
    # Jinja's tojson (for <script> blocks) wrote é as \u00e9 and & < as \u0026 \u003c,
    # so a page's "Café & <b>" showed as "Caf\u00e9 \u0026 \u003cb\u003e".
    task = {
        **running_task(""),
        "status": "TASK_STATUS_SUCCEEDED",
        "result": {"json": {"title": "Café & <b>", "count": 3}},
    }
    for client in console(task):
        answer = client.get("/console/tasks/t1")

        assert answer.status_code == 200
        assert "\\u" not in answer.text
        assert "&#34;title&#34;: &#34;Café &amp; &lt;b&gt;&#34;" in answer.text
        assert "&#34;count&#34;: 3" in answer.text


def test_a_text_result_longer_than_the_page_shows_says_it_is_cut() -> None:
    # The page shows the first 20,000 characters; it used to end there without a word.
    text = "x" * 20_000 + "the end"
    task = {**running_task(""), "status": "TASK_STATUS_SUCCEEDED", "result": {"text": text}}
    for client in console(task):
        answer = client.get("/console/tasks/t1")

        assert answer.status_code == 200
        assert "the end" not in answer.text
        assert "Only the first 20,000 of its 20,007 characters are shown here" in answer.text


def test_a_short_text_result_is_shown_whole_without_a_note() -> None:
    task = {**running_task(""), "status": "TASK_STATUS_SUCCEEDED", "result": {"text": "all of it"}}
    for client in console(task):
        answer = client.get("/console/tasks/t1")

        assert "all of it" in answer.text
        assert "text-cut" not in answer.text


def test_a_task_without_a_trace_says_so_and_points_to_no_waterfall() -> None:
    # A farm without tracing keeps no trace id: the page pointed to `farm task trace ID`
    # for a waterfall there was none of.
    for client in console(running_task("")):
        answer = client.get("/console/tasks/t1")

        assert answer.status_code == 200
        trace = answer.text.split("<dt>Trace</dt>", 1)[1].split("</dd>", 1)[0]
        assert trace.startswith('<dd id="task-trace">none ')
        assert "farm task trace" not in trace


@pytest.mark.parametrize(
    ("scopes", "cancel_shown"), [("tasks.read", False), ("tasks.read tasks.write", True)]
)
def test_cancel_shows_only_to_a_key_that_may_cancel(scopes: str, cancel_shown: bool) -> None:
    for client in console(running_task("")):
        client.cookies.set(SCOPES_COOKIE, scopes)
        answer = client.get("/console/tasks/t1")

        assert answer.status_code == 200
        assert ("/console/tasks/t1/cancel" in answer.text) is cancel_shown


def test_a_traced_task_names_its_trace_and_how_to_draw_it() -> None:
    task = {**running_task(""), "traceId": "ab" * 16}
    for client in console(task):
        answer = client.get("/console/tasks/t1")

        assert "ab" * 16 in answer.text
        assert "`farm task trace t1` prints its waterfall" in answer.text


def test_a_task_with_a_callback_shows_where_it_stands_and_each_attempt() -> None:
    # The page said nothing of callbacks: a receiver that kept failing showed nowhere.
    task = {
        **running_task(""),
        "status": "TASK_STATUS_SUCCEEDED",
        "spec": {**running_task("")["spec"], "callbackUrl": "https://hooks.example.net/farm"},
        "callbackStatus": "CALLBACK_STATUS_PENDING",
        "callbackAttempts": [
            {
                "attempt": 1,
                "time": "2026-12-07T01:00:05Z",
                "httpStatus": 503,
                "error": "the receiver answered HTTP 503",
            },
            {"attempt": 2, "time": "2026-12-07T01:00:06Z", "error": "no answer within 10 s"},
        ],
    }
    for client in console(task):
        answer = client.get("/console/tasks/t1")

        assert answer.status_code == 200
        assert (
            '<p id="task-callback">pending: <code>https://hooks.example.net/farm</code> '
            '<span class="hint">(being retried)</span></p>'
        ) in answer.text
        assert "<td>503</td><td>the receiver answered HTTP 503</td>" in answer.text
        assert "<td>none</td><td>no answer within 10 s</td>" in answer.text


def test_a_task_without_a_callback_shows_no_callback_section() -> None:
    for client in console(running_task("")):
        answer = client.get("/console/tasks/t1")

        assert answer.status_code == 200
        assert "task-callback" not in answer.text
