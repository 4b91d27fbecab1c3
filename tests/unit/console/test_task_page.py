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
from farm_console.views import KEY_COOKIE, PREFIX, NotSignedIn, farm_refused, not_signed_in

WAITING = "waiting for storage: storage unavailable (S3 is unavailable); retrying"


class OneTaskFarm:
    """A farm whose GetTask answers `task` (as the HTTP API's JSON)."""

    def __init__(self, task: dict[str, Any]) -> None:
        self.task = task
        self.tasks = self
        self.GetTask = "get"

    async def call(self, key: str, method: str, request: Any) -> dict[str, Any]:
        return self.task


def console(task: dict[str, Any]) -> Iterator[TestClient]:
    """The console's task pages, on a farm that answers `task`."""
    app = Starlette(
        routes=[Mount(PREFIX, routes=tasks.routes)],
        exception_handlers={NotSignedIn: not_signed_in, FarmError: farm_refused},
    )
    app.state.farm = OneTaskFarm(task)
    app.state.settings = ConsoleSettings()
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


def test_a_traced_task_names_its_trace_and_how_to_draw_it() -> None:
    task = {**running_task(""), "traceId": "ab" * 16}
    for client in console(task):
        answer = client.get("/console/tasks/t1")

        assert "ab" * 16 in answer.text
        assert "`farm task trace t1` prints its waterfall" in answer.text


def test_an_untraced_task_does_not_point_at_a_trace_it_lacks() -> None:
    # `farm task trace` of a task without a trace id can only say it has none.
    for client in console(running_task("")):
        answer = client.get("/console/tasks/t1")

        assert "farm task trace t1" not in answer.text
        assert "<dt>Trace</dt><dd>none" in answer.text
