"""The CLI prints replies as the HTTP API does: whole numbers without a `.0`."""

import json
import re

from google.protobuf import json_format

from farm.tasks.v1 import tasks_pb2
from farm_cli.console import message_json


def tab_list_result() -> tasks_pb2.TaskResult:
    """A session command's result as `farm session tabs ID list` gets it back."""
    result = tasks_pb2.TaskResult(screencast=tasks_pb2.ScreencastStatus(seconds=0.0))
    tabs = [{"index": 0, "title": "Example", "current": True}, {"index": 1, "ratio": 0.5}]
    json_format.Parse(json.dumps(tabs), result.json)
    return result


def test_whole_numbers_are_printed_without_a_fraction() -> None:
    text = message_json(tab_list_result())
    reply = json.loads(text)
    assert [type(tab["index"]) for tab in reply["json"]] == [int, int]
    assert type(reply["screencast"]["seconds"]) is int
    assert not re.search(r"\d\.0\b", text), text


def test_fractions_and_64_bit_integers_keep_their_form() -> None:
    result = tab_list_result()
    result.screencast.seconds = 6.25
    reply = json.loads(message_json(result, indent=None))
    assert reply["screencast"]["seconds"] == 6.25
    assert reply["json"][1]["ratio"] == 0.5
    task = tasks_pb2.Task(id="t", attempts=2)
    task.result.artifacts.add(size_bytes=48113)
    printed = json.loads(message_json(task, every_field=False))
    assert printed["result"]["artifacts"][0]["sizeBytes"] == "48113"
    assert printed["attempts"] == 2
