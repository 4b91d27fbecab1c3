"""`farm agent`, `farm deadletter` and `farm status` against an in-process fake AdminService."""

import datetime as dt
import json
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from farm.admin.v1 import admin_pb2, admin_pb2_grpc
from farm.tasks.v1 import tasks_pb2
from farm_cli.launcher.processes import free_port
from farm_cli.main import main
from farm_core.timestamps import to_timestamp
from tests.unit.cli.fake_services import Calls

KEY = "bf_admin-test-key"


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


READ = dt.datetime(2026, 12, 1, 9, 30, 0, tzinfo=dt.UTC)


def fleet_status(window_minutes: int) -> admin_pb2.FleetStatus:
    """A farm with a busy agent, a lost one, a waiting queue and an open breaker."""
    return admin_pb2.FleetStatus(
        read_time=to_timestamp(READ),
        agents=[
            admin_pb2.Agent(
                id="agent-1",
                region="eu",
                version="0.1.0",
                concurrency=2,
                busy_places=2,
                browsers=2,
                running_task_ids=["t1"],
                session_ids=["s1"],
                heartbeat_time=to_timestamp(READ - dt.timedelta(seconds=3)),
            ),
            admin_pb2.Agent(
                id="agent-2",
                concurrency=2,
                lost=True,
                heartbeat_time=to_timestamp(READ - dt.timedelta(seconds=20)),
            ),
        ],
        queues=[
            admin_pb2.QueueStatus(
                region="any",
                priority=tasks_pb2.PRIORITY_HIGH,
                pending=4,
                in_flight=1,
                oldest_pending_age_seconds=330,
            )
        ],
        tasks=admin_pb2.TaskCounts(
            window_minutes=window_minutes or 15, queued=4, running=1, succeeded=9, failed=2
        ),
        open_breakers=[
            admin_pb2.BreakerStatus(
                host="down.example",
                state="half_open",
                failures=5,
                open_time=to_timestamp(READ - dt.timedelta(seconds=45)),
            )
        ],
        open_breaker_count=3,
        dead_letters=admin_pb2.DeadLetterCounts(total=7, recent=2),
        open_sessions=1,
    )


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[int, Calls]]:
    calls = Calls()
    port = free_port()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    admin_pb2_grpc.add_AdminServiceServicer_to_server(FakeAdmin(calls), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    yield port, calls
    server.stop(grace=None)


@pytest.fixture
def calls(fake: tuple[int, Calls], monkeypatch: pytest.MonkeyPatch) -> Calls:
    port, recorded = fake
    monkeypatch.setenv("FARM_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("FARM_API_KEY", KEY)
    return recorded


def test_agent_list_prints_the_agents(calls: Calls, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["agent", "list"]) == 0
    assert calls.last("ListAgents")[1]["authorization"] == f"Bearer {KEY}"
    printed = json.loads(capsys.readouterr().out)
    assert [agent["id"] for agent in printed["agents"]] == ["host-a-1", "host-b-1"]
    assert printed["agents"][1]["runningTaskIds"] == ["t1"]


def test_agent_drain_sends_the_id_and_prints_the_draining_agent(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["agent", "drain", "host-a-1"]) == 0
    assert calls.last("DrainAgent")[0].id == "host-a-1"
    assert json.loads(capsys.readouterr().out)["draining"] is True


@pytest.mark.parametrize(
    ("agent_id", "printed"),
    [
        ("gone", "error: NOT_FOUND: agent 'gone' not found\n"),
        (
            "shared",
            "error: PERMISSION_DENIED: only an admin of the bootstrap tenant may manage the "
            "shared fleet of agents\n",
        ),
    ],
)
def test_agent_drain_refused_prints_why_and_exits_1(
    calls: Calls, capsys: pytest.CaptureFixture[str], agent_id: str, printed: str
) -> None:
    assert main(["agent", "drain", agent_id]) == 1
    assert capsys.readouterr().err == printed


def test_deadletter_list_prints_one_page_with_its_token(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deadletter", "list", "--page-size", "2"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [letter["task"]["id"] for letter in printed["deadLetters"]] == ["d1", "d2"]
    assert printed["nextPageToken"] == "page2"
    assert calls.last("ListDeadLetters")[0].page_size == 2


def test_deadletter_list_all_follows_every_page(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deadletter", "list", "--all"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [letter["task"]["id"] for letter in printed["deadLetters"]] == ["d1", "d2", "d3"]
    assert printed["nextPageToken"] == ""
    assert calls.last("ListDeadLetters")[0].page_token == "page2"


def test_deadletter_requeue_prints_the_queued_task(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deadletter", "requeue", "abc123"]) == 0
    assert calls.last("RequeueDeadLetter")[0].task_id == "abc123"
    printed = json.loads(capsys.readouterr().out)
    assert (printed["id"], printed["status"], printed["attempts"]) == (
        "abc123",
        "TASK_STATUS_QUEUED",
        3,
    )


def test_deadletter_requeue_of_a_task_that_did_not_fail_prints_why(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deadletter", "requeue", "queued"]) == 1
    assert capsys.readouterr().err == (
        "error: FAILED_PRECONDITION: task 'queued' is TASK_STATUS_QUEUED: "
        "only a FAILED task can be requeued\n"
    )


def test_status_prints_each_part_of_the_farm_readably(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status"]) == 0
    printed = capsys.readouterr().out
    assert calls.last("GetFleetStatus")[0].window_minutes == 0
    assert printed.startswith("browserfarm at 2026-12-01 09:30:00 UTC\n")
    lines = printed.splitlines()
    assert "Agents: 2 (1 ready, 0 draining, 1 lost)" in lines
    agent_1 = next(line.split() for line in lines if line.startswith("  agent-1"))
    assert agent_1 == ["agent-1", "eu", "0.1.0", "ready", "2/2", "2", "1", "1", "3", "s", "ago"]
    agent_2 = next(line.split() for line in lines if line.startswith("  agent-2"))
    assert agent_2[:5] == ["agent-2", "any", "?", "LOST", "0/2"]
    assert next(line.split() for line in lines if line.startswith("  any ")) == [
        "any",
        "high",
        "4",
        "1",
        "5",
        "min",
    ]
    assert (
        "Tasks: 4 queued, 1 running now; in the last 15 min 9 succeeded, 2 failed, 0 cancelled"
        in lines
    )
    assert "Circuit breakers: 3 not closed" in lines
    assert next(line.split() for line in lines if "down.example" in line) == [
        "down.example",
        "half-open",
        "5",
        "45",
        "s",
        "ago",
    ]
    assert "  ... and 2 more" in lines
    assert "Dead letters: 7 (2 in the last 15 min; `farm deadletter list`)" in lines
    assert "Sessions open: 1" in lines


def test_status_json_is_the_fleet_status_and_the_window_is_passed_on(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--json", "--window", "60"]) == 0
    assert calls.last("GetFleetStatus")[0].window_minutes == 60
    printed = json.loads(capsys.readouterr().out)
    assert printed["tasks"]["windowMinutes"] == 60
    assert [agent["id"] for agent in printed["agents"]] == ["agent-1", "agent-2"]
    assert printed["queues"][0]["priority"] == "PRIORITY_HIGH"
    assert printed["openBreakers"][0]["host"] == "down.example"
    assert printed["deadLetters"] == {"total": "7", "recent": "2"}


def test_status_window_beyond_a_day_is_a_usage_error(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["status", "--window", "1441"])
    assert "must be from 0 to 1440" in capsys.readouterr().err
