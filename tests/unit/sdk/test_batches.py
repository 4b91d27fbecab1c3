"""The SDK's task lists and batches: pages followed lazily, one item per spec of a batch."""

import pytest
from google.protobuf import json_format

import browserfarm
from browserfarm.batches import (
    MAX_BATCH,
    MAX_BATCH_BYTES,
    TaskPage,
    batch_items,
    batches,
    call_spans,
    list_request,
    pages,
)
from browserfarm.specs import SpecLike
from farm.tasks.v1 import tasks_pb2

GOOD = {"url": "https://example.com", "content": {}}


def page(*ids: str, token: str = "") -> TaskPage:
    tasks = (browserfarm.Task.from_proto(tasks_pb2.Task(id=task_id)) for task_id in ids)
    return TaskPage(tuple(tasks), token)


async def test_pages_follow_each_token_and_fetch_only_when_the_last_page_is_taken() -> None:
    served = {"": page("a", "b", token="t1"), "t1": page("c", token="t2"), "t2": page("d")}
    asked: list[str] = []

    async def fetch(token: str) -> TaskPage:
        asked.append(token)
        return served[token]

    walked = pages(fetch)
    first = await anext(walked)
    assert [task.id for task in first.tasks] == ["a", "b"]
    assert asked == [""]
    rest = [task.id async for each in walked for task in each.tasks]
    assert rest == ["c", "d"]
    assert asked == ["", "t1", "t2"]


def test_a_list_request_carries_the_status_and_labels_as_the_farm_takes_them() -> None:
    request = list_request("queued", {"job": "nightly"}, 10, "tok")
    assert request.status == tasks_pb2.TASK_STATUS_QUEUED
    assert list(request.label) == ["job=nightly"]
    assert (request.page_size, request.page_token) == (10, "tok")
    assert list_request(browserfarm.TaskStatus.FAILED, None, 0, "").status == (
        tasks_pb2.TASK_STATUS_FAILED
    )
    with pytest.raises(browserfarm.InvalidArgument, match=r"^status: "):
        list_request("sleeping", None, 0, "")


def test_a_spec_the_checks_refuse_is_its_items_error_and_is_not_sent() -> None:
    (sent,) = batches([GOOD, {"url": "https://example.com", "viewprt": {}}, GOOD])
    assert sent.sent == (0, 2)
    assert len(sent.request.requests) == 2
    assert all(spec.idempotency_key for spec in sent.request.requests)
    (refused,) = sent.refused.values()
    assert refused.field == "requests[1].viewprt"
    assert refused.code == "INVALID_ARGUMENT"
    assert refused.message.startswith("requests[1].viewprt: ") and "viewport" in refused.message


def test_a_value_the_checks_cannot_parse_is_named_by_its_path() -> None:
    (sent,) = batches([GOOD, {"url": "https://example.com", "viewport": {"width": "wide"}}])
    assert sent.refused[1].field == "requests[1].viewport.width"
    assert sent.refused[1].message.startswith("requests[1].viewport.width: ")


def test_the_farms_item_errors_are_numbered_as_the_callers_specs() -> None:
    (sent,) = batches([{"viewprt": {}}, GOOD, {"url": "gopher://x/"}, GOOD])
    reply = tasks_pb2.CreateTasksResponse(
        tasks=[tasks_pb2.Task(id="t1"), tasks_pb2.Task(id="t3")],
        errors=[
            tasks_pb2.CreateTasksError(
                index=1,
                field="requests[1].url",
                code="INVALID_ARGUMENT",
                message="requests[1].url: must be http or https",
            )
        ],
    )
    items = batch_items(sent, reply)
    assert [item.index for item in items] == [0, 1, 2, 3]
    assert [item.ok for item in items] == [False, True, False, True]
    assert [item.task.id for item in items if item.task] == ["t1", "t3"]
    error = items[2].error
    assert error is not None and error.field == "requests[2].url"
    assert error.message == "requests[2].url: must be http or https"


def test_more_than_1000_specs_go_in_calls_of_at_most_1000_in_the_callers_order() -> None:
    specs: list[SpecLike] = [GOOD] * 2500
    specs[1000] = {"viewprt": {}}
    calls = batches(specs)
    assert [len(call.request.requests) for call in calls] == [1000, 1000, 499]
    # The refused spec after the first call's last one belongs to the first call.
    assert [call.start for call in calls] == [0, 1001, 2001]
    assert list(calls[0].refused) == [1000]
    assert [index for call in calls for index in call.sent] == [
        index for index in range(2500) if index != 1000
    ]
    keys = [spec.idempotency_key for call in calls for spec in call.request.requests]
    assert len(set(keys)) == 2499 and "" not in keys


def test_call_spans_keep_each_call_to_1000_specs_and_768_kib_but_one_spec_alone() -> None:
    assert call_spans([]) == [range(0, 0)]
    assert call_spans([1] * (2 * MAX_BATCH + 1)) == [
        range(0, 1000),
        range(1000, 2000),
        range(2000, 2001),
    ]
    half = MAX_BATCH_BYTES // 2
    assert call_spans([half, half, 1, MAX_BATCH_BYTES + 1, 1]) == [
        range(0, 2),
        range(2, 3),
        range(3, 4),
        range(4, 5),
    ]


def test_specs_go_in_calls_of_at_most_768_kib() -> None:
    fat = {**GOOD, "labels": {"pad": "x" * 4000}}
    calls = batches([fat] * 400)
    assert len(calls) == 3
    for call in calls:
        size = sum(
            len(json_format.MessageToJson(spec, indent=None)) for spec in call.request.requests
        )
        assert MAX_BATCH_BYTES - 4100 < size <= MAX_BATCH_BYTES or call is calls[-1]


def test_a_batch_of_only_refused_specs_makes_no_call() -> None:
    with browserfarm.Client("127.0.0.1:9", "bf_key", max_attempts=1) as farm:
        (item,) = farm.create_tasks([{"url": "https://example.com", "nope": 1}])
    assert item.error is not None and item.error.field == "requests[0].nope"
