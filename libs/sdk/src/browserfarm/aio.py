"""AsyncClient: the SDK itself, asyncio over the farm's API (Client wraps it).

It speaks gRPC, or HTTP/JSON with transport="http" (browserfarm.transport); the
calls it makes, retries and idempotency keys included, are the same over both.
"""

import asyncio
import os
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self, Unpack

from browserfarm.batches import (
    BatchItem,
    TaskPage,
    batch_items,
    batches,
    list_request,
    pages,
    remaining,
    task_page,
)
from browserfarm.calls import Calls, Metadata, seconds_or_default
from browserfarm.cancels import CancelItem, cancel_items, cancel_requests, task_ids
from browserfarm.config import ClientOptions, ClientSettings, client_options, with_files_there
from browserfarm.contexts import AsyncWithOnly
from browserfarm.errors import BatchIncomplete, FarmError, InvalidArgument, TaskFailed, Timeout
from browserfarm.files import write_whole
from browserfarm.results import Artifact, Task, TaskStatus, WebhookSecret
from browserfarm.sessions import AsyncSession, session_spec
from browserfarm.specs import (
    SpecLike,
    action_spec,
    extract_fields,
    task_spec,
    with_idempotency_key,
)
from farm.tasks.v1 import tasks_pb2

FINAL = frozenset(
    {tasks_pb2.TASK_STATUS_SUCCEEDED, tasks_pb2.TASK_STATUS_FAILED, tasks_pb2.TASK_STATUS_CANCELLED}
)


def checked(task: Task, check: bool) -> Task:
    """`task`, or TaskFailed when `check` is set and it ended FAILED or CANCELLED."""
    if check and task.status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
        raise TaskFailed(task)
    return task


async def _closed(stream: Any) -> None:
    """Ends a streamed reply left before its end: a gRPC call is cancelled, an HTTP one closed."""
    if hasattr(stream, "cancel"):
        stream.cancel()
    elif hasattr(stream, "aclose"):
        await stream.aclose()


def _not_ended(task_id: str | None, limit: float) -> str:
    """Timeout's message for run() and wait(): which task, and that it is still there."""
    if task_id is None:
        return f"the task did not end within {limit:g} s (the farm had not yet answered its id)"
    return (
        f"task {task_id} did not end within {limit:g} s; it is still on the farm: "
        "wait() for it again, get() or cancel() it"
    )


class AsyncClient(AsyncWithOnly):
    """The farm's work from asyncio: `await client.screenshot(url)`, tasks and sessions.

    `url` and `api_key` default to FARM_URL and FARM_API_KEY, else to the local farm
    while it runs (FARM_HOME's, else the checkout's .farm) and its admin key; `environ`
    and `cwd` stand in for os.environ and the working directory. Other keyword arguments
    set ClientOptions (timeout, max_attempts, transport, ...). Use it as `async with`,
    or close() it; it holds one gRPC channel (or HTTP pool), which its calls share.
    """

    def __init__(
        self, url: str | None = None, api_key: str | None = None, **settings: Unpack[ClientSettings]
    ) -> None:
        self.options: ClientOptions = with_files_there(client_options(url, api_key, **settings))
        self._calls = Calls(self.options)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the channel."""
        await self._calls.close()

    async def submit(self, spec: SpecLike, *, timeout: float | None = None) -> Task:
        """Queues a task and returns it QUEUED.

        An idempotency key is set unless the spec has one, so a retried call returns
        the same task instead of making a second.
        """
        request = tasks_pb2.CreateTaskRequest(spec=with_idempotency_key(task_spec(spec)))
        return Task.from_proto(
            await self._calls.call(self._calls.tasks.CreateTask, request, timeout=timeout)
        )

    async def run(
        self, spec: SpecLike, *, timeout: float | None = None, check: bool = True
    ) -> Task:
        """Runs a task and returns it ended.

        Raises TaskFailed if it failed or was cancelled (unless `check` is False), and
        Timeout after `timeout` seconds (default ClientOptions.run_timeout). It carries
        an idempotency key, as submit's does.
        """
        limit = seconds_or_default(timeout, self.options.run_timeout)
        request = tasks_pb2.RunTaskRequest(spec=with_idempotency_key(task_spec(spec)))
        task_id: str | None = None
        try:
            async with asyncio.timeout(limit):
                reply = await self._calls.call(self._calls.tasks.RunTask, request, timeout=limit)
                task = Task.from_proto(reply)
                task_id = task.id
                # RunTask gives the task back as it stands when its wait is over.
                if not task.done:
                    task = await self._watched(task.id)
        except TimeoutError:
            raise Timeout(_not_ended(task_id, limit), task_id) from None
        except Timeout as timeout:
            # RunTask's own deadline passed before the farm answered with the task.
            raise Timeout(_not_ended(task_id, limit), task_id) from timeout
        return checked(task, check)

    async def wait(
        self, task: Task | str, *, timeout: float | None = None, check: bool = True
    ) -> Task:
        """`task` (or the task of that id) once it has ended; raises as run() does."""
        task_id = task if isinstance(task, str) else task.id
        limit = seconds_or_default(timeout, self.options.run_timeout)
        try:
            async with asyncio.timeout(limit):
                ended = await self._watched(task_id)
        except TimeoutError:
            raise Timeout(_not_ended(task_id, limit), task_id) from None
        return checked(ended, check)

    async def _watched(self, task_id: str) -> Task:
        """The task once WatchTask reports it ended; the watch is made again if it breaks."""
        calls = self._calls

        async def watch(
            request: tasks_pb2.WatchTaskRequest, metadata: Metadata, timeout: float
        ) -> tasks_pb2.Task:
            # The caller's asyncio.timeout bounds the watch, not a gRPC deadline.
            stream = calls.tasks.WatchTask(request, metadata=metadata)
            try:
                async for event in stream:
                    if event.status in FINAL and event.HasField("task"):
                        ended: tasks_pb2.Task = event.task
                        return ended
            finally:
                # Left open, a gRPC call whose status had not arrived yet stayed pending on
                # the loop ("Task was destroyed but it is pending!" as it closed).
                await _closed(stream)
            current: tasks_pb2.Task = await calls.tasks.GetTask(
                tasks_pb2.GetTaskRequest(id=task_id), metadata=metadata, timeout=timeout
            )
            return current

        while True:
            reply = await calls.call(watch, tasks_pb2.WatchTaskRequest(id=task_id))
            if reply.status in FINAL:
                return Task.from_proto(reply)

    async def get(self, task_id: str) -> Task:
        """The task as it stands."""
        request = tasks_pb2.GetTaskRequest(id=task_id)
        return Task.from_proto(await self._calls.call(self._calls.tasks.GetTask, request))

    async def list_page(
        self,
        *,
        status: TaskStatus | str | None = None,
        labels: Mapping[str, str] | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> TaskPage:
        """One page of the tenant's tasks, newest first: those in `status` carrying every label.

        `page_size` is 1 to 1000 (0: the farm's 50); pass the page's next_page_token
        as `page_token` for the next page.
        """
        request = list_request(status, labels, page_size, page_token)
        return task_page(await self._calls.call(self._calls.tasks.ListTasks, request))

    async def list_tasks(
        self,
        *,
        status: TaskStatus | str | None = None,
        labels: Mapping[str, str] | None = None,
        page_size: int = 0,
    ) -> AsyncIterator[Task]:
        """The tenant's tasks, as list_page filters them, across pages.

        A page is asked for only when the tasks of the one before have been taken.
        """

        async def fetch(token: str) -> TaskPage:
            return await self.list_page(
                status=status, labels=labels, page_size=page_size, page_token=token
            )

        async for page in pages(fetch):
            for task in page.tasks:
                yield task

    async def create_tasks(
        self, specs: Iterable[SpecLike], *, timeout: float | None = None
    ) -> list[BatchItem]:
        """Queues any number of tasks; one BatchItem per spec, in their order.

        The specs go in CreateTasks calls of at most 1,000 (and 768 KiB), one after
        another. An item the SDK's spec checks or the farm refuse carries its ItemError
        (naming the field, e.g. "requests[3].url") instead of a task; the others are
        queued, each with an idempotency key as submit's, set before the first call.
        A failed call (after its retries) is raised: by itself if it was the first,
        else as BatchIncomplete, which holds the items of the calls that went through
        and the specs still to send. `timeout` is each call's.
        """
        given = list(specs)
        calls = batches(given)
        items: list[BatchItem] = []
        for number, call in enumerate(calls):
            if not call.sent:
                items.extend(batch_items(call, None))
                continue
            try:
                reply = await self._calls.call(
                    self._calls.tasks.CreateTasks, call.request, timeout=timeout
                )
            except FarmError as error:
                if number == 0:
                    raise
                raise BatchIncomplete(
                    error, items, call.start, remaining(given, calls[number:])
                ) from error
            items.extend(batch_items(call, reply))
        return items

    async def cancel(self, task: Task | str) -> Task:
        """Cancels a task that has not ended; returns it as it stands."""
        request = tasks_pb2.CancelTaskRequest(id=task if isinstance(task, str) else task.id)
        return Task.from_proto(await self._calls.call(self._calls.tasks.CancelTask, request))

    async def cancel_tasks(
        self, tasks: Iterable[Task | str], *, timeout: float | None = None
    ) -> list[CancelItem]:
        """Cancels any number of tasks (Tasks or ids); one CancelItem per id, in their order.

        The ids go in CancelTasks calls of at most 1,000, one after another; an id of
        no task of the caller's tenant gets its error (NOT_FOUND), the others their
        task as it stands. A failed call (after its retries) is raised; the calls
        before it took effect, and cancelling the same tasks again is harmless.
        `timeout` is each call's.
        """
        items: list[CancelItem] = []
        for request in cancel_requests(task_ids(tasks)):
            reply = await self._calls.call(self._calls.tasks.CancelTasks, request, timeout=timeout)
            items.extend(cancel_items(request, reply, len(items)))
        return items

    async def download(self, artifact: Artifact | str, *, timeout: float | None = None) -> bytes:
        """The bytes of an artifact: one of a task's `result.artifacts`, or its id.

        `timeout` is the call's (None: ClientOptions.timeout), for a large one on a slow link.
        """
        artifact_id = artifact if isinstance(artifact, str) else artifact.id
        return await self._calls.content(artifact_id, timeout)

    async def download_to(
        self,
        artifact: Artifact | str,
        path: str | os.PathLike[str],
        *,
        timeout: float | None = None,
    ) -> Path:
        """Saves the bytes of an artifact as the file `path`, whole or not at all; returns it.

        A download or a write that fails leaves no partial file, and a file already at
        `path` as it was (browserfarm.files.write_whole). `timeout` as download's.
        """
        data = await self.download(artifact, timeout=timeout)
        target = Path(path)
        await asyncio.to_thread(write_whole, target, data)
        return target

    async def webhook_secret(self, *, rotate: bool = False) -> WebhookSecret:
        """The tenant's secret that signs callbacks; with `rotate`, a new one replaces it.

        After a rotation callbacks carry a signature by the previous secret too, until
        `previous_valid_until` (docs/webhooks.md).
        """
        if rotate:
            # Not made again on UNAVAILABLE: a second rotation would retire the first's secret.
            reply = await self._calls.call(
                self._calls.tasks.RotateWebhookSecret,
                tasks_pb2.RotateWebhookSecretRequest(),
                idempotent=False,
            )
        else:
            reply = await self._calls.call(
                self._calls.tasks.GetWebhookSecret, tasks_pb2.GetWebhookSecretRequest()
            )
        return WebhookSecret.from_proto(reply)

    async def screenshot(self, url: str, **options: Any) -> bytes:
        """The page at `url` as an image.

        Keywords are screenshot options (full_page, format, selector, omit_background,
        clip={"x": 0, "y": 0, "width": 400, "height": 300}) and TaskSpec
        fields (viewport, steps, wait_until, cache_ttl_seconds, ...).
        """
        task = await self.run(action_spec(url, "screenshot", options))
        return await self._calls.artifact(task.result, "SCREENSHOT")

    async def pdf(self, url: str, **options: Any) -> bytes:
        """The page at `url` printed as a PDF.

        Keywords are PDF options (paper_format, landscape, print_background,
        margin={"top": "1cm"}, page_ranges="1-3", prefer_css_page_size, scale) and
        TaskSpec fields.
        """
        task = await self.run(action_spec(url, "pdf", options))
        return await self._calls.artifact(task.result, "PDF")

    async def content(self, url: str, **options: Any) -> str:
        """The page's HTML, or its text with format="text"."""
        task = await self.run(action_spec(url, "content", options))
        return task.result.text if task.result else ""

    async def extract(self, url: str, fields: Mapping[str, str], **options: Any) -> Any:
        """Values picked by CSS selectors: {"title": "h1", "links": "a@href[]"} → a dict."""
        spec = action_spec(url, "extract", {"fields": extract_fields(fields), **options})
        task = await self.run(spec)
        return task.result.json if task.result else None

    def map(
        self, specs: Iterable[SpecLike], *, concurrency: int = 4, timeout: float | None = None
    ) -> AsyncGenerator[Task, None]:
        """Runs the tasks, at most `concurrency` at a time, yielding each as it ends.

        A failed task is yielded like the others (see its status); a refused call
        (invalid spec, quota) is raised, and the tasks still running are left to the
        farm. Stopping early stops waiting for them too. A `concurrency` below 1 or a
        `timeout` not above 0 raises InvalidArgument here, not once iterated.
        """
        if concurrency < 1:
            raise InvalidArgument(f"concurrency: at least 1, not {concurrency!r}")
        seconds_or_default(timeout, self.options.timeout)
        return self._mapped(iter(specs), concurrency, timeout)

    async def _mapped(
        self, source: Iterator[SpecLike], concurrency: int, timeout: float | None
    ) -> AsyncGenerator[Task, None]:
        """map()'s tasks, its arguments checked."""
        running: set[asyncio.Task[Task]] = set()
        try:
            while True:
                for spec in source:
                    running.add(asyncio.ensure_future(self.run(spec, timeout=timeout, check=False)))
                    if len(running) >= concurrency:
                        break
                if not running:
                    return
                ended, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for finished in ended:
                    yield finished.result()
        finally:
            for waiting in running:
                waiting.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    def session(self, **spec: Any) -> AsyncSession:
        """A session of its own browser page, opened by `async with` and closed after it.

        Keywords are SessionSpec fields: viewport, device, idle_timeout_seconds, ...
        """
        return AsyncSession(self._calls, session_spec(spec))
