"""`farm agent` and `farm deadletter` against an in-process fake AdminService."""

import json

import pytest

from farm_cli.main import main
from tests.unit.cli.conftest import KEY
from tests.unit.cli.fake_services import Calls


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
