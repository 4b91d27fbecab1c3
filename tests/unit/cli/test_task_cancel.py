"""`farm task cancel` of many tasks against the fake services: calls, outcomes, exit codes."""

import io
import json
import secrets
from pathlib import Path

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_cli.main import main
from tests.unit.cli.fake_calls import Calls
from tests.unit.cli.fake_services import RATE_LIMITED_CANCELS


def cancelled_ids(calls: Calls) -> list[str]:
    """The ids sent in CancelTasks calls (and CancelTask's), in order."""
    ids: list[str] = []
    for name, request, _ in calls.seen:
        if name == "CancelTasks":
            ids += request.ids
        elif name == "CancelTask":
            ids.append(request.id)
    return ids


def batch_calls(calls: Calls) -> list[list[str]]:
    """The ids of each CancelTasks call, in order."""
    return [list(request.ids) for name, request, _ in calls.seen if name == "CancelTasks"]


def test_many_ids_get_a_line_each_in_order_and_a_summary(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    calls.seen.clear()
    assert main(["task", "cancel", "t1", "done", "t2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == ["t1  cancelled", "done  already ended (SUCCEEDED)", "t2  cancelled"]
    assert lines[3].startswith("2 cancelled, 1 already ended, 0 not found, 0 failed, of 3 in ")
    # One CancelTasks call, which names the task that had ended: nothing is read first.
    assert [name for name, _, _ in calls.seen] == ["CancelTasks"]
    assert batch_calls(calls) == [["t1", "done", "t2"]]


def test_not_found_and_failed_tasks_exit_3_with_the_others_cancelled(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["task", "cancel", "missing", "t1", "broken-1", "--json"]) == 3
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(lines, key=lambda line: line["id"]) == [
        {
            "id": "broken-1",
            "outcome": "failed",
            "error": {
                "code": "UNAVAILABLE",
                "message": "ids[2]: task 'broken-1' kept changing; try again",
            },
        },
        {
            "id": "missing",
            "outcome": "not_found",
            "error": {"code": "NOT_FOUND", "message": "ids[0]: task 'missing' not found"},
        },
        {"id": "t1", "outcome": "cancelled", "status": "TASK_STATUS_CANCELLED"},
    ]


def test_a_rate_limited_cancel_is_waited_out_not_reported(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    limited = f"limited-{secrets.token_hex(4)}"
    assert main(["task", "cancel", limited, "t1"]) == 0
    assert f"{limited}  cancelled" in capsys.readouterr().out.splitlines()
    assert cancelled_ids(calls).count(limited) == RATE_LIMITED_CANCELS + 1


def test_by_label_every_queued_and_running_page_is_cancelled_in_one_batch(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    calls.seen.clear()
    assert main(["task", "cancel", "--label", "job=x", "--label", "team=web", "t9"]) == 0
    listings = [request for name, request, _ in calls.seen if name == "ListTasks"]
    # Each status's listing follows the fake's two pages.
    assert [(r.status, r.page_token) for r in listings] == [
        (tasks_pb2.TASK_STATUS_QUEUED, ""),
        (tasks_pb2.TASK_STATUS_QUEUED, "page2"),
        (tasks_pb2.TASK_STATUS_RUNNING, ""),
        (tasks_pb2.TASK_STATUS_RUNNING, "page2"),
    ]
    assert {tuple(r.label) for r in listings} == {("job=x", "team=web")}
    assert batch_calls(calls) == [["t9", "t1", "t2", "t3"]]  # each once, in one call
    assert [request.id for name, request, _ in calls.seen if name == "GetTask"] == []
    assert capsys.readouterr().out.splitlines()[:4] == [
        "t9  cancelled",
        "t1  cancelled",
        "t2  cancelled",
        "t3  cancelled",
    ]


def test_a_rate_limited_listing_is_waited_out(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    label = f"limited={secrets.token_hex(4)}"
    assert main(["task", "cancel", "--label", label]) == 0
    listings = [r for name, r, _ in calls.seen if name == "ListTasks" and label in r.label]
    assert len(listings) == 5  # the first one refused, then two pages of each status
    assert capsys.readouterr().out.splitlines()[:3] == [
        "t1  cancelled",
        "t2  cancelled",
        "t3  cancelled",
    ]


def test_ids_from_a_file_and_stdin_join_the_arguments_once_each(
    calls: Calls,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    listed = tmp_path / "ids.txt"
    listed.write_text("t1\n\n# the second batch\nt2\n")
    monkeypatch.setattr("sys.stdin", io.StringIO('{"tasks": [{"id": "t2"}, {"id": "t3"}]}\n'))
    calls.seen.clear()
    assert main(["task", "cancel", "t1", "--from", str(listed)]) == 0
    assert main(["task", "cancel", "--from", "-", "--json"]) == 0
    assert cancelled_ids(calls)[:2] in (["t1", "t2"], ["t2", "t1"])
    assert sorted(cancelled_ids(calls)[2:]) == ["t2", "t3"]
    assert capsys.readouterr().out.splitlines()[:2] == ["t1  cancelled", "t2  cancelled"]


def test_a_bad_line_is_refused_before_any_cancel(
    calls: Calls, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    specs = tmp_path / "specs.jsonl"
    specs.write_text('t1\n{"url": "https://example.com", "content": {}}\n')
    calls.seen.clear()
    assert main(["task", "cancel", "t2", "--from", str(specs)]) == 1
    assert capsys.readouterr().err == (
        f'error: {specs} line 2: a JSON object without a task "id" (or "tasks" with ids)\n'
    )
    assert cancelled_ids(calls) == []


def test_a_refused_key_stops_the_batch_with_exit_4(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["task", "cancel", "denied", "t1", "--concurrency", "1"]) == 4
    assert capsys.readouterr().err == "error: PERMISSION_DENIED: the key lacks tasks.write\n"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "name the tasks to cancel: IDs, --from FILE or --label KEY=VALUE"),
        (
            ["t1", "t2", "--concurrency", "0"],
            "argument --concurrency: must be from 1 to 64, got '0'",
        ),
        (["t1", "--concurrency", "65"], "argument --concurrency: must be from 1 to 64, got '65'"),
        (["t1", "--concurrency", "abc"], "argument --concurrency: must be from 1 to 64, got 'abc'"),
        (["--label", "job"], "argument --label: expected key=value, got 'job'"),
    ],
)
def test_no_selection_or_a_bad_option_is_a_usage_error(
    calls: Calls, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    code: object
    try:
        code = main(["task", "cancel", *arguments])
    except SystemExit as exit_:  # argparse's own refusal
        code = exit_.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_one_id_alone_prints_the_task_as_before_even_if_it_had_ended(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["task", "cancel", "done"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["id"], printed["status"]) == ("done", "TASK_STATUS_SUCCEEDED")
    assert main(["task", "cancel", "missing"]) == 1
    assert capsys.readouterr().err == "error: NOT_FOUND: task missing not found\n"


def test_2500_ids_are_cancelled_in_calls_of_1000_with_a_line_each_in_order(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    given = [f"q{n}" for n in range(2500)]
    given[1500] = "done"
    calls.seen.clear()
    assert main(["task", "cancel", *given]) == 0
    assert sorted(len(ids) for ids in batch_calls(calls)) == [500, 1000, 1000]  # 4 at once
    assert sorted(cancelled_ids(calls)) == sorted(given)
    assert {name for name, _, _ in calls.seen} == {"CancelTasks"}  # no listing, no reads
    lines = capsys.readouterr().out.splitlines()
    assert lines[1500] == "done  already ended (SUCCEEDED)"
    assert lines[:3] == ["q0  cancelled", "q1  cancelled", "q2  cancelled"]
    assert lines[-1].startswith("2499 cancelled, 1 already ended, 0 not found, 0 failed, of 2500 ")
