"""Log lines: JSON off a terminal, text on one, and the ids of the work in hand on each."""

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from farm.sessions.v1 import sessions_pb2
from farm.storage.v1 import artifacts_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.interceptors import logged_ids
from farm_core.logs import LogFormat, chosen_format, configure_logging, log_context


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def json_lines(stream: io.StringIO) -> list[dict[str, str]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_lines_are_json_with_service_and_empty_ids_when_not_on_a_terminal() -> None:
    stream = io.StringIO()
    configure_logging("scheduler", stream=stream)
    logging.getLogger("farm.test").warning("queue %s is %d deep", "high", 3)
    (line,) = json_lines(stream)
    assert line["message"] == "queue high is 3 deep"
    assert line["level"] == "WARNING"
    assert line["service"] == "scheduler"
    assert line["logger"] == "farm.test"
    assert line["task_id"] == line["session_id"] == line["trace_id"] == ""
    assert line["time"].endswith("+00:00")


def test_every_line_inside_a_log_context_names_its_task_and_session() -> None:
    stream = io.StringIO()
    configure_logging("agent", stream=stream)
    log = logging.getLogger("farm.test")
    with log_context(task_id="t1"):
        log.info("started")
        with log_context(session_id="s1"):
            log.info("in a session")
        log.info("finished")
    log.info("outside")
    ids = [(line["task_id"], line["session_id"]) for line in json_lines(stream)]
    assert ids == [("t1", ""), ("t1", "s1"), ("t1", ""), ("", "")]


def test_the_ids_follow_the_work_into_the_asyncio_tasks_it_starts() -> None:
    stream = io.StringIO()
    configure_logging("agent", stream=stream)
    log = logging.getLogger("farm.test")

    async def attempt(task_id: str) -> None:
        with log_context(task_id=task_id):
            await asyncio.sleep(0)
            await asyncio.create_task(asyncio.to_thread(log.info, "in a thread"))
            log.info("back")

    async def two_attempts() -> None:
        await asyncio.gather(attempt("a"), attempt("b"))
        log.info("idle")

    asyncio.run(two_attempts())
    by_task = sorted((line["task_id"], line["message"]) for line in json_lines(stream))
    assert by_task == [
        ("", "idle"),
        ("a", "back"),
        ("a", "in a thread"),
        ("b", "back"),
        ("b", "in a thread"),
    ]


def test_a_terminal_gets_one_readable_line_with_the_ids_at_its_end() -> None:
    terminal = Terminal()
    configure_logging("agent", stream=terminal)
    with log_context(task_id="t9"):
        logging.getLogger("farm.test").info("navigated")
    line = terminal.getvalue().strip()
    assert " INFO agent farm.test: navigated [task=t9]" in line
    assert not line.startswith("{")


def test_an_exception_is_one_json_line_with_its_traceback() -> None:
    stream = io.StringIO()
    configure_logging("auth", stream=stream)
    try:
        raise ValueError("bad key")
    except ValueError:
        logging.getLogger("farm.test").exception("check failed")
    (line,) = json_lines(stream)
    assert "ValueError: bad key" in line["exception"]


def test_a_chosen_format_wins_over_the_terminal_test() -> None:
    assert chosen_format(LogFormat.AUTO, Terminal()) is LogFormat.TEXT
    assert chosen_format("auto", io.StringIO()) is LogFormat.JSON
    assert chosen_format("json", Terminal()) is LogFormat.JSON
    assert chosen_format(LogFormat.TEXT, io.StringIO()) is LogFormat.TEXT


def test_rpc_log_ids_come_from_the_rule_target_of_task_and_session_calls() -> None:
    tasks = "/farm.tasks.v1.TaskService/"
    assert logged_ids(f"{tasks}GetTask", tasks_pb2.GetTaskRequest(id="t1")) == {"task_id": "t1"}
    session = sessions_pb2.GetSessionRequest(id="s1")
    assert logged_ids("/farm.sessions.v1.SessionService/GetSession", session) == {
        "session_id": "s1"
    }
    artifact = artifacts_pb2.GetArtifactRequest(id="a1")
    assert logged_ids("/farm.storage.v1.ArtifactService/GetArtifact", artifact) == {}
    assert logged_ids(f"{tasks}ListTasks", tasks_pb2.ListTasksRequest()) == {}


def test_asyncios_tls_eof_warning_is_dropped_and_its_other_warnings_kept() -> None:
    stream = io.StringIO()
    configure_logging("auth", stream=stream)
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.warning("returning true from eof_received() has no effect when using ssl")
    asyncio_log.warning("Executing %s took %.3f seconds", "<Handle>", 0.2)
    assert [line["message"] for line in json_lines(stream)] == [
        "Executing <Handle> took 0.200 seconds"
    ]
