"""Task lists and batches: ListTasks requests and paging, CreateTasks items and their errors.

What the clients' list_tasks and create_tasks make of the calls, apart from the calls
themselves: the request from the caller's filters, the pages one after another while
the farm hands out a next-page token, a batch split into CreateTasks calls of at most
1,000 specs, and one BatchItem per spec of it, whether the SDK's own spec checks
refused it, the farm refused it, or the farm queued it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from google.protobuf import json_format

from browserfarm.errors import InvalidArgument
from browserfarm.results import Task, TaskStatus
from browserfarm.specs import SpecLike, task_spec, with_idempotency_key
from farm.tasks.v1 import tasks_pb2

MAX_BATCH = 1000
"""The most specs one CreateTasks call takes; create_tasks sends more in several calls."""
MAX_BATCH_BYTES = 768 * 1024
"""The most spec bytes (as JSON) one call carries: Envoy refuses a request over 1 MiB."""

# A spec check's message starts with the path of the field it refuses: "viewport.width: ...".
_FIELD_PATH = re.compile(r"^([A-Za-z_][\w.\[\]]*): ")
_ITEM_PREFIX = re.compile(r"^requests\[\d+\]")


@dataclass(frozen=True)
class TaskPage:
    """One page of ListTasks: its tasks, newest first, and the token of the next ("" at the end)."""

    tasks: tuple[Task, ...]
    next_page_token: str


@dataclass(frozen=True)
class ItemError:
    """Why one spec of a batch was not queued.

    `field` names the bad field as sent, prefixed with the item ("requests[3].url"),
    or just the item ("requests[3]") when no one field is to blame (a quota); `code`
    is the gRPC status the item would have had alone (INVALID_ARGUMENT, ...).
    """

    field: str
    code: str
    message: str


@dataclass(frozen=True)
class BatchItem:
    """What became of the spec at `index` of a batch: its queued task, or its error."""

    index: int
    task: Task | None
    error: ItemError | None

    @property
    def ok(self) -> bool:
        """Whether the spec was queued."""
        return self.task is not None


def list_request(
    status: TaskStatus | str | None,
    labels: Mapping[str, str] | None,
    page_size: int,
    page_token: str,
) -> tasks_pb2.ListTasksRequest:
    """ListTasks' request; `status` is a TaskStatus or its name ("queued" too)."""
    request = tasks_pb2.ListTasksRequest(
        page_size=page_size,
        page_token=page_token,
        label=[f"{key}={value}" for key, value in (labels or {}).items()],
    )
    if status is not None:
        name = f"TASK_STATUS_{str(status).upper().removeprefix('TASK_STATUS_')}"
        if (
            name not in tasks_pb2.TaskStatus.DESCRIPTOR.values_by_name
            or name == "TASK_STATUS_UNSPECIFIED"
        ):
            known = ", ".join(each.value for each in TaskStatus)
            raise InvalidArgument(f"status: one of {known}, not {status!r}")
        request.status = tasks_pb2.TaskStatus.Value(name)
    return request


def task_page(reply: tasks_pb2.ListTasksResponse) -> TaskPage:
    """The typed view of a ListTasks reply."""
    return TaskPage(tuple(Task.from_proto(task) for task in reply.tasks), reply.next_page_token)


async def pages(fetch: Callable[[str], Awaitable[TaskPage]]) -> AsyncIterator[TaskPage]:
    """The pages `fetch(token)` gives, from the first ("") while each names a next one.

    Each page is fetched only when the one before has been taken.
    """
    token = ""
    while True:
        page = await fetch(token)
        yield page
        if not page.next_page_token:
            return
        token = page.next_page_token


def _local_error(index: int, error: InvalidArgument) -> ItemError:
    """A spec check's refusal of item `index`, named as the farm names its own."""
    message = str(error)
    found = _FIELD_PATH.match(message)
    if found:
        return ItemError(
            f"requests[{index}].{found.group(1)}",
            "INVALID_ARGUMENT",
            f"requests[{index}].{message}",
        )
    return ItemError(f"requests[{index}]", "INVALID_ARGUMENT", f"requests[{index}]: {message}")


@dataclass(frozen=True)
class Batch:
    """One CreateTasks call of a batch: its request, and the caller's specs it stands for.

    It covers the caller's specs from `start` on, up to the next call's `start`:
    `sent[n]` is the caller's index of the request's n-th spec, and `refused` holds
    the items among them that the checks refused, by the caller's index. A Batch
    with nothing in `sent` makes no call.
    """

    start: int
    request: tasks_pb2.CreateTasksRequest
    sent: tuple[int, ...]
    refused: dict[int, ItemError]


def _json_bytes(spec: tasks_pb2.TaskSpec) -> int:
    """The spec's size as JSON: at least its size as a protobuf, so a bound for both."""
    return len(json_format.MessageToJson(spec, indent=None).encode())


def call_spans(sizes: Sequence[int]) -> list[range]:
    """The positions of each CreateTasks call's specs, given the specs' sizes in bytes.

    A call takes at most MAX_BATCH specs and MAX_BATCH_BYTES, but for a spec over
    MAX_BATCH_BYTES by itself, which has a call of its own. No specs: one empty call.
    The CLI's `farm task submit` splits its files with it too.
    """
    spans: list[range] = []
    start, size = 0, 0
    for position, spec_bytes in enumerate(sizes):
        if position > start and (
            position - start == MAX_BATCH or size + spec_bytes > MAX_BATCH_BYTES
        ):
            spans.append(range(start, position))
            start, size = position, 0
        size += spec_bytes
    spans.append(range(start, len(sizes)))
    return spans


def batches(specs: Sequence[SpecLike]) -> list[Batch]:
    """The calls that send `specs`, in order, as call_spans splits them (by their JSON).

    Every spec is checked as submit checks one and given an idempotency key before
    the first call, so a call made again (UNAVAILABLE) or a spec sent again from a
    BatchIncomplete's `remaining` gets the same task. A spec the checks refuse
    becomes its item's error.
    """
    checked: list[tuple[int, tasks_pb2.TaskSpec]] = []
    refused: dict[int, ItemError] = {}
    for index, spec in enumerate(specs):
        try:
            checked.append((index, with_idempotency_key(task_spec(spec))))
        except InvalidArgument as error:
            refused[index] = _local_error(index, error)
    spans = call_spans([_json_bytes(spec) for _, spec in checked])
    starts = [0, *(checked[span.start][0] for span in spans[1:])]
    ends = [*starts[1:], len(specs)]
    return [
        Batch(
            start,
            tasks_pb2.CreateTasksRequest(requests=[checked[n][1] for n in span]),
            tuple(checked[n][0] for n in span),
            {index: error for index, error in refused.items() if start <= index < end},
        )
        for span, start, end in zip(spans, starts, ends, strict=True)
    ]


def remaining(specs: Sequence[SpecLike], calls: Sequence[Batch]) -> list[SpecLike]:
    """The specs `calls` stand for, in order: the checked TaskSpecs as sent, keys included.

    A spec the checks refused is given as the caller wrote it. `calls` is not empty.
    """
    start = calls[0].start
    left: list[SpecLike] = list(specs[start:])
    for call in calls:
        for index, sent in zip(call.sent, call.request.requests, strict=True):
            left[index - start] = sent
    return left


def _renumbered(text: str, index: int) -> str:
    """`text` with its leading "requests[n]" made the caller's index."""
    return _ITEM_PREFIX.sub(f"requests[{index}]", text, count=1)


def batch_items(sent: Batch, reply: tasks_pb2.CreateTasksResponse | None) -> list[BatchItem]:
    """One item per spec of the batch, in the caller's order (`reply` None: nothing was sent)."""
    items: dict[int, BatchItem] = {
        index: BatchItem(index, None, error) for index, error in sent.refused.items()
    }
    if reply is not None:
        failed = {error.index: error for error in reply.errors}
        queued = iter(reply.tasks)
        for position, index in enumerate(sent.sent):
            farm_error = failed.get(position)
            if farm_error is not None:
                error = ItemError(
                    _renumbered(farm_error.field, index) or f"requests[{index}]",
                    farm_error.code,
                    _renumbered(farm_error.message, index),
                )
                items[index] = BatchItem(index, None, error)
            else:
                items[index] = BatchItem(index, Task.from_proto(next(queued)), None)
    return [items[index] for index in sorted(items)]
