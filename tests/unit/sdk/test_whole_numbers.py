"""The SDK gives a task's JSON as the HTTP API writes it: whole numbers without a `.0`."""

import json

from google.protobuf import json_format

from browserfarm.results import Result, Task, whole_numbers
from farm.tasks.v1 import tasks_pb2
from farm_core.message_json import whole_numbers as farms_whole_numbers

TABS = [{"index": 0, "title": "Example", "current": True}, {"index": 1, "ratio": 0.5}]


def tab_list_result() -> tasks_pb2.TaskResult:
    """A session command's result as the SDK gets it back (a tab list)."""
    result = tasks_pb2.TaskResult(screencast=tasks_pb2.ScreencastStatus(seconds=0.0))
    json_format.Parse(json.dumps(TABS), result.json)
    return result


def test_a_results_json_has_whole_numbers_as_ints() -> None:
    written = Result.from_proto(tab_list_result()).json
    assert written == TABS
    assert [type(tab["index"]) for tab in written] == [int, int]
    assert type(written[1]["ratio"]) is float


def test_a_tasks_dict_has_whole_numbers_as_ints_and_64_bit_integers_as_strings() -> None:
    task = tasks_pb2.Task(id="t", attempts=2, result=tab_list_result())
    task.result.screencast.seconds = 4.0
    task.result.artifacts.add(size_bytes=48113)
    written = Task.from_proto(task).to_dict()
    assert type(written["result"]["screencast"]["seconds"]) is int
    assert type(written["result"]["json"][0]["index"]) is int
    assert written["result"]["artifacts"][0]["sizeBytes"] == "48113"


def test_the_sdks_copy_reads_numbers_as_the_farms_does() -> None:
    values = [0.0, -3.0, 2.5, 2.0**53, 2.0**53 - 1, float("inf"), "1.0", True, None]
    nested = {"a": values, "b": [{"c": 7.0}]}
    assert whole_numbers(nested) == farms_whole_numbers(nested)
    farms = farms_whole_numbers(values)
    assert isinstance(farms, list)
    assert [type(v) for v in whole_numbers(values)] == [type(v) for v in farms]
