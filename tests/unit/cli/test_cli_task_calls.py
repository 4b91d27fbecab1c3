"""The user CLI's task commands against in-process fake services: what they send and print."""

import json
from pathlib import Path

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_cli.commands.task_watch import event_line
from farm_cli.main import main
from tests.unit.cli.fake_calls import Calls
from tests.unit.cli.fake_services import STORAGE_WAIT


def test_task_create_sends_the_spec_and_prints_the_queued_task(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["task", "create", "https://example.com", "--pdf", "--label", "a=b"]) == 0
    request, _ = calls.last("CreateTask")
    assert request.spec.url == "https://example.com" and request.spec.HasField("pdf")
    printed = json.loads(capsys.readouterr().out)
    assert printed["status"] == "TASK_STATUS_QUEUED"
    assert printed["spec"]["labels"] == {"a": "b"}


def test_task_submit_sends_the_files_specs_in_batches_and_numbers_errors_in_the_file(
    calls: Calls, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    urls = ["https://example.com/"] * 1002
    urls[1000] = "ftp://example.com/"
    specs = tmp_path / "specs.jsonl"
    specs.write_text("".join(json.dumps({"url": url, "screenshot": {}}) + "\n" for url in urls))
    earlier = len(calls.seen)

    assert main(["task", "submit", str(specs)]) == 3

    batches = [request for name, request, _ in calls.seen[earlier:] if name == "CreateTasks"]
    assert [len(batch.requests) for batch in batches] == [1000, 2]
    printed = json.loads(capsys.readouterr().out)
    assert len(printed["tasks"]) == 1001
    assert printed["errors"] == [
        {
            "index": 1000,
            "field": "requests[1000].url",
            "code": "INVALID_ARGUMENT",
            "message": "requests[1000].url: must be http or https",
        }
    ]


def test_task_submit_keeps_each_call_under_envoys_body_limit(
    calls: Calls, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    spec = {"url": "https://example.com/", "script": {"source": "() => 1" + " " * 200_000}}
    specs = tmp_path / "specs.jsonl"
    specs.write_text((json.dumps(spec) + "\n") * 9)
    earlier = len(calls.seen)

    assert main(["task", "submit", str(specs)]) == 0

    batches = [request for name, request, _ in calls.seen[earlier:] if name == "CreateTasks"]
    assert [len(batch.requests) for batch in batches] == [3, 3, 3]
    assert len(json.loads(capsys.readouterr().out)["tasks"]) == 9


@pytest.mark.parametrize(
    ("lines", "error"),
    [
        (
            '{"url": "https://example.com/"}\n{"address": "x"}\n',
            "line 2: address: TaskSpec has no such field\n",
        ),
        # One line naming the field, with the closest one, not protobuf's two-line text.
        (
            '{"url": "https://example.com/", "screenshot": {"fullpage": true}}\n',
            "line 1: screenshot.fullpage: ScreenshotOptions has no such "
            "field; did you mean 'fullPage'?\n",
        ),
    ],
    ids=["unknown field", "near miss"],
)
def test_task_submit_names_the_line_and_field_that_is_not_a_task_spec(
    calls: Calls, capsys: pytest.CaptureFixture[str], tmp_path: Path, lines: str, error: str
) -> None:
    specs = tmp_path / "specs.jsonl"
    specs.write_text(lines)
    earlier = len(calls.seen)

    assert main(["task", "submit", str(specs)]) == 1

    assert capsys.readouterr().err == f"error: {specs} {error}"
    assert calls.seen[earlier:] == []


def test_task_submit_reads_a_line_as_the_sdk_reads_a_spec(
    calls: Calls, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    specs = tmp_path / "specs.jsonl"
    specs.write_text('{"url": "https://example.com/", "screenshot": {"format": "jpeg"}}\n')

    assert main(["task", "submit", str(specs)]) == 0

    request, _ = calls.last("CreateTasks")
    assert request.requests[0].screenshot.format == tasks_pb2.IMAGE_FORMAT_JPEG


def test_task_run_exits_0_when_the_task_succeeded(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["task", "run", "https://example.com"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "TASK_STATUS_SUCCEEDED"


def test_task_run_of_a_task_still_queued_when_runtask_stops_waiting_is_a_timeout(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    # Not exit 3 ("did not succeed"): the task may still succeed; the error says so.
    assert main(["task", "run", "https://example.com/unended"]) == 1
    printed = capsys.readouterr()
    assert json.loads(printed.out)["status"] == "TASK_STATUS_QUEUED"
    assert printed.err.startswith("error: DEADLINE_EXCEEDED: task t1 is still QUEUED")
    assert "farm task watch t1" in printed.err

    assert main(["task", "run", "https://example.com/unended", "--json"]) == 1
    error = json.loads(capsys.readouterr().err)["error"]
    assert error["code"] == "DEADLINE_EXCEEDED"
    assert error["message"].startswith("task t1 is still QUEUED")


def test_task_list_all_follows_every_page(calls: Calls, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["task", "list", "--all", "--status", "failed", "--label", "job=x"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [task["id"] for task in printed["tasks"]] == ["t1", "t2", "t3"]
    request, _ = calls.last("ListTasks")
    assert request.status == tasks_pb2.TASK_STATUS_FAILED
    assert list(request.label) == ["job=x"]


def test_task_list_prints_one_page_with_its_token(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["task", "list", "--page-size", "2"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["nextPageToken"] == "page2"
    assert calls.last("ListTasks")[0].page_size == 2


def test_task_cancel_sends_the_id_and_prints_the_task(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["task", "cancel", "t9"]) == 0
    assert calls.last("CancelTask")[0].id == "t9"
    printed = json.loads(capsys.readouterr().out)
    assert (printed["id"], printed["status"]) == ("t9", "TASK_STATUS_CANCELLED")


def test_task_watch_prints_one_event_a_line(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["task", "watch", "t1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["status"] for line in lines] == [
        "TASK_STATUS_QUEUED",
        "TASK_STATUS_RUNNING",
        "TASK_STATUS_SUCCEEDED",
    ]


def test_task_get_prints_what_a_running_task_waits_for(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["task", "get", "waiting"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["status"], printed["statusMessage"]) == ("TASK_STATUS_RUNNING", STORAGE_WAIT)


def test_task_watch_json_lines_carry_what_the_attempt_waits_for(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["task", "watch", "waiting", "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [event["task"]["statusMessage"] for event in events] == ["", STORAGE_WAIT, ""]


def test_task_watch_lines_on_a_terminal_say_what_the_attempt_waits_for() -> None:
    task = tasks_pb2.Task(
        status=tasks_pb2.TASK_STATUS_RUNNING, attempts=1, agent_id="a1", status_message=STORAGE_WAIT
    )
    event = tasks_pb2.TaskEvent(status=task.status, task=task)
    event.time.FromSeconds(0)

    assert event_line(event) == f"00:00:00  RUNNING    attempt 1  on a1  {STORAGE_WAIT}"
