"""`farm agent`, `farm deadletter` and `farm status` against an in-process fake AdminService."""

import json

import pytest

from farm_cli.main import main
from tests.unit.cli.conftest import KEY
from tests.unit.cli.fake_calls import Calls


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
    ("agent_id", "printed", "exit_code"),
    [
        ("gone", "error: NOT_FOUND: agent 'gone' not found\n", 1),
        (
            "shared",
            "error: PERMISSION_DENIED: only an admin of the bootstrap tenant may manage the "
            "shared fleet of agents\n",
            4,
        ),
    ],
)
def test_agent_drain_refused_prints_why_and_exits_by_the_refusal(
    calls: Calls, capsys: pytest.CaptureFixture[str], agent_id: str, printed: str, exit_code: int
) -> None:
    assert main(["agent", "drain", agent_id]) == exit_code
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
    assert "nextPageToken" not in printed
    assert calls.last("ListDeadLetters")[0].page_token == "page2"


def test_deadletter_list_prints_only_set_fields_and_every_field_with_json(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deadletter", "list"]) == 0
    (first, _) = json.loads(capsys.readouterr().out)["deadLetters"]
    assert first == {"task": {"id": "d1", "status": "TASK_STATUS_FAILED"}}
    assert main(["deadletter", "list", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    task = printed["deadLetters"][0]["task"]
    assert task["id"] == "d1" and task["attempts"] == 0 and task["agentId"] == ""
    assert printed["nextPageToken"] == "page2"


def test_deadletter_list_of_none_prints_an_empty_list_for_scripts(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    # `jq '.deadLetters[]'` reads an empty list as none; a missing one is an error.
    assert main(["deadletter", "list", "--page-token", "empty"]) == 0
    assert json.loads(capsys.readouterr().out) == {"deadLetters": []}


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


@pytest.mark.parametrize("minutes", ["0", "1441", "-1"])
def test_status_window_outside_a_minute_to_a_day_is_a_usage_error_naming_it(
    calls: Calls, capsys: pytest.CaptureFixture[str], minutes: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["status", "--window", minutes])
    assert exited.value.code == 2
    assert f"argument --window: must be from 1 to 1440, got {minutes}" in capsys.readouterr().err
