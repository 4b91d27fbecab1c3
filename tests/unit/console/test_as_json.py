"""The console shows the farm's replies as the HTTP API writes them: `3`, not `3.0`."""

import json

from google.protobuf import json_format

from farm.tasks.v1 import tasks_pb2
from farm_console.farm import as_json


def test_a_replys_whole_numbers_are_ints() -> None:
    task = tasks_pb2.Task(id="t", attempts=2)
    task.result.screencast.seconds = 12.0
    json_format.Parse(json.dumps({"count": 3, "ratio": 0.5}), task.result.json)
    task.result.artifacts.add(size_bytes=48113)
    written = as_json(task)
    assert written["result"]["json"] == {"count": 3, "ratio": 0.5}
    assert type(written["result"]["json"]["count"]) is int
    assert type(written["result"]["screencast"]["seconds"]) is int
    assert written["result"]["artifacts"][0]["sizeBytes"] == "48113"
    assert written["attempts"] == 2
