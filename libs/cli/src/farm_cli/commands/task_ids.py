"""Task ids read from a file or stdin: plain ids, or the JSON the `farm` task commands print.

One id a line, or JSON objects (on one line or spread over several, as `farm` prints
them indented): a Task, or anything with a string "id" (`task create`, `task get`,
`task cancel --json`'s lines), or an object whose "tasks" holds them (`task submit`'s
answer, `task list`'s). Blank lines and `# comments` are skipped.
"""

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from farm_cli.console import CliError

# A word of letters, digits, - and _: the farm's ids are 32 hex digits, and one of
# another form is the farm's to call not found, not a malformed line.
_ID = re.compile(r"[A-Za-z0-9_-]+")
_DECODER = json.JSONDecoder()


def read_task_ids(text: str, source: str) -> list[str]:
    """The task ids in `text`, in order; CliError naming the first line that holds none."""
    ids = list(_ids_in(text, source))
    if not ids:
        raise CliError(f"{source} holds no task ids")
    return ids


def task_ids_from(name: str) -> list[str]:
    """The task ids of the file `name`, or of standard input for "-"."""
    if name == "-":
        return read_task_ids(sys.stdin.read(), "standard input")
    try:
        text = Path(name).read_text(encoding="utf-8")
    except OSError as error:
        raise CliError(f"cannot read {name}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise CliError(f"cannot read {name}: not UTF-8 text") from error
    return read_task_ids(text, name)


def _ids_in(text: str, source: str) -> Iterator[str]:
    position, number = 0, 1
    while position < len(text):
        line_end = _end_of_line(text, position)
        line = text[position:line_end].strip()
        if line.startswith("{"):
            start = text.index("{", position)
            value, position = _json_object(text, start, source)
            yield from _ids_of(value, source, number)
            number += text.count("\n", start, position)
            line_end = _end_of_line(text, position)
            if text[position:line_end].strip():
                raise CliError(f"{source} line {number}: more after the JSON object")
        elif line and not line.startswith("#"):
            if not _ID.fullmatch(line):
                raise CliError(
                    f"{source} line {number}: neither a task id nor a JSON object with an "
                    f'"id": {line[:80]!r}'
                )
            yield line
        position, number = line_end + 1, number + 1


def _end_of_line(text: str, position: int) -> int:
    end = text.find("\n", position)
    return len(text) if end < 0 else end


def _json_object(text: str, start: int, source: str) -> tuple[Any, int]:
    try:
        return _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as error:
        raise CliError(f"{source} line {error.lineno}: not JSON: {error.msg}") from error


def _ids_of(value: Any, source: str, number: int) -> Iterator[str]:
    if isinstance(value, dict) and isinstance(value.get("id"), str) and value["id"]:
        yield value["id"]
        return
    tasks = value.get("tasks") if isinstance(value, dict) else None
    if isinstance(tasks, list) and all(
        isinstance(task, dict) and isinstance(task.get("id"), str) and task["id"] for task in tasks
    ):
        yield from (task["id"] for task in tasks)
        return
    raise CliError(
        f'{source} line {number}: a JSON object without a task "id" (or "tasks" with ids)'
    )
