"""Task ids read for `farm task cancel --from`: plain lines and the JSON the CLI prints."""

import json

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_cli.commands.task_ids import read_task_ids
from farm_cli.console import CliError, message_json

ID_A, ID_B, ID_C = "a" * 32, "b" * 32, "c" * 32


def test_one_id_a_line_with_blank_lines_and_comments_skipped() -> None:
    text = f"# yesterday's batch\n{ID_A}\n\n  {ID_B}  \r\n#{ID_C}\n"
    assert read_task_ids(text, "ids.txt") == [ID_A, ID_B]


def test_what_task_submit_and_create_print_indented_gives_their_ids() -> None:
    submitted = tasks_pb2.CreateTasksResponse(
        tasks=[tasks_pb2.Task(id=ID_A), tasks_pb2.Task(id=ID_B)],
        errors=[tasks_pb2.CreateTasksError(index=2, code="INVALID_ARGUMENT")],
    )
    created = tasks_pb2.Task(id=ID_C, status=tasks_pb2.TASK_STATUS_QUEUED)
    text = f"{message_json(submitted)}\n{message_json(created)}\n"
    assert text.count("\n") > 10  # printed over many lines
    assert read_task_ids(text, "-") == [ID_A, ID_B, ID_C]


def test_json_lines_of_task_cancel_mix_with_plain_ids() -> None:
    lines = [
        json.dumps({"id": ID_A, "outcome": "cancelled", "status": "TASK_STATUS_CANCELLED"}),
        ID_B,
        json.dumps({"id": ID_C, "outcome": "not_found", "error": {"code": "NOT_FOUND"}}),
    ]
    assert read_task_ids("\n".join(lines), "-") == [ID_A, ID_B, ID_C]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            f"{ID_A}\n\n{ID_B} {ID_C}\n",
            f"ids.txt line 3: neither a task id nor a JSON object with an \"id\": '{ID_B} {ID_C}'",
        ),
        (
            f'{ID_A}\n{{"url": "https://example.com"}}\n',
            'ids.txt line 2: a JSON object without a task "id" (or "tasks" with ids)',
        ),
        (
            f'{ID_A}\n{{\n  "id": "{ID_B}",\n  "status": QUEUED\n}}\n',
            "ids.txt line 4: not JSON: Expecting value",
        ),
        (
            f'{{\n  "id": "{ID_A}"\n}}\n{{"id": "{ID_B}"}} {ID_C}\n',
            "ids.txt line 4: more after the JSON object",
        ),
        ('"quoted"\n', "ids.txt line 1: neither a task id nor a JSON object"),
        ("\n# nothing\n", "ids.txt holds no task ids"),
    ],
)
def test_a_line_that_is_no_id_is_named_by_its_number(text: str, error: str) -> None:
    with pytest.raises(CliError) as raised:
        read_task_ids(text, "ids.txt")
    assert str(raised.value).startswith(error)
