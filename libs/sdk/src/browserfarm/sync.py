"""Client: the blocking face of AsyncClient, which runs on an event loop of its own thread.

Each method hands the AsyncClient's coroutine to that loop and waits for it, so the
two clients behave alike by construction; only Playwright is attached here, with the
caller's own (sync) Playwright.
"""

import os
import threading
from collections.abc import AsyncIterator, Generator, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar, Unpack

from browserfarm.aio import AsyncClient
from browserfarm.batches import BatchItem, TaskPage
from browserfarm.cancels import CancelItem
from browserfarm.config import ClientOptions, ClientSettings
from browserfarm.contexts import WithOnly
from browserfarm.loop_thread import LoopThread
from browserfarm.results import (
    Artifact,
    Result,
    SessionInfo,
    Tab,
    Task,
    TaskStatus,
    WebhookSecret,
)
from browserfarm.sessions import AsyncSession
from browserfarm.specs import SpecLike
from farm.sessions.v1 import sessions_pb2

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

Value = TypeVar("Value")


async def _next_of(source: AsyncIterator[Value]) -> Value:
    """`source`'s next item, asked for on the running loop.

    An async generator is bound to the loop of the thread its first anext() is called
    in: called on the caller's thread, the client's loop would not know it, its close()
    would not finish it, and the garbage collector would, later, on the caller's thread.
    """
    return await anext(source)


class Session(WithOnly):
    """A farm session from blocking code: `with client.session() as session:`."""

    def __init__(self, loop: LoopThread, session: AsyncSession) -> None:
        self._loop = loop
        self._session = session

    def __enter__(self) -> Self:
        self._loop.run(self._session.open())
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def info(self) -> SessionInfo:
        """The session as the farm last reported it."""
        return self._session.info

    @property
    def id(self) -> str:
        """The session's id."""
        return self._session.id

    @property
    def cdp_url(self) -> str:
        """The DevTools WebSocket of the session's browser (through the farm's edge)."""
        return self._session.cdp_url

    def open(self) -> SessionInfo:
        """Opens the session (`with` does it)."""
        return self._loop.run(self._session.open())

    def refresh(self) -> SessionInfo:
        """The session as it stands now."""
        return self._loop.run(self._session.refresh())

    def cdp_token(self) -> sessions_pb2.CdpToken:
        """A token attaching CDP clients that send no header, as AsyncSession.cdp_token."""
        return self._loop.run(self._session.cdp_token())

    def close(self) -> SessionInfo | None:
        """Closes the session; closing it again does nothing."""
        return self._loop.run(self._session.close())

    def run(self, command: Mapping[str, Any] | sessions_pb2.SessionCommand) -> Result:
        """One command in its JSON form, as AsyncSession.run."""
        return self._loop.run(self._session.run(command))

    def goto(self, url: str, **options: Any) -> Result:
        """Navigates the page to `url`."""
        return self._loop.run(self._session.goto(url, **options))

    def back(self) -> Result:
        """Goes back one entry in the page's history."""
        return self._loop.run(self._session.back())

    def forward(self) -> Result:
        """Goes forward one entry in the page's history."""
        return self._loop.run(self._session.forward())

    def tabs(self) -> list[Tab]:
        """The session's pages (tabs), as AsyncSession.tabs."""
        return self._loop.run(self._session.tabs())

    def select_tab(self, index: int) -> list[Tab]:
        """Makes the page at `index` current, as AsyncSession.select_tab."""
        return self._loop.run(self._session.select_tab(index))

    def close_tab(self, index: int) -> list[Tab]:
        """Closes the page at `index`, as AsyncSession.close_tab."""
        return self._loop.run(self._session.close_tab(index))

    def new_tab(self, url: str | None = None) -> list[Tab]:
        """Opens a new page, as AsyncSession.new_tab."""
        return self._loop.run(self._session.new_tab(url))

    def click(self, selector: str) -> Result:
        """Clicks the element `selector` finds."""
        return self._loop.run(self._session.click(selector))

    def fill(self, selector: str, value: str) -> Result:
        """Types `value` into the field `selector` finds."""
        return self._loop.run(self._session.fill(selector, value))

    def press(self, key: str) -> Result:
        """Presses `key` on the focused element."""
        return self._loop.run(self._session.press(key))

    def screenshot(self, url: str | None = None, **options: Any) -> bytes:
        """The page (after going to `url`, if given) as an image."""
        return self._loop.run(self._session.screenshot(url, **options))

    def pdf(self, url: str | None = None, **options: Any) -> bytes:
        """The page (after going to `url`, if given) printed as a PDF."""
        return self._loop.run(self._session.pdf(url, **options))

    def content(self, url: str | None = None, **options: Any) -> str:
        """The page's HTML, or its text with format="text"."""
        return self._loop.run(self._session.content(url, **options))

    def extract(self, fields: Mapping[str, str], url: str | None = None, **options: Any) -> Any:
        """Values picked from the page by CSS selectors."""
        return self._loop.run(self._session.extract(fields, url, **options))

    def connect_playwright(self, playwright: "Playwright") -> "Browser":
        """The session's browser in the caller's sync Playwright (`sync_playwright()`)."""
        return playwright.chromium.connect_over_cdp(self.cdp_url, headers=self._session.headers)


class Client(WithOnly):
    """The farm's work from blocking code; the same methods as AsyncClient, without await.

    Use it as `with`, or close() it: it holds a gRPC channel and a thread.
    """

    def __init__(
        self, url: str | None = None, api_key: str | None = None, **settings: Unpack[ClientSettings]
    ) -> None:
        self._loop = LoopThread()
        self._closing = threading.Lock()

        async def made() -> AsyncClient:
            # grpc.aio binds a channel to the loop it is made on.
            return AsyncClient(url, api_key, **settings)

        try:
            self._client = self._loop.run(made())
        except BaseException:
            self._loop.stop()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def options(self) -> ClientOptions:
        """How the client calls the farm."""
        return self._client.options

    def close(self) -> None:
        """Closes the channel and the client's thread once; later closes, from any thread, wait."""
        with self._closing:
            if self._loop.stopped:
                return
            try:
                self._loop.run(self._client.close())
            finally:
                self._loop.stop()

    def submit(self, spec: SpecLike, *, timeout: float | None = None) -> Task:
        """Queues a task (with an idempotency key) and returns it QUEUED."""
        return self._loop.run(self._client.submit(spec, timeout=timeout))

    def run(self, spec: SpecLike, *, timeout: float | None = None, check: bool = True) -> Task:
        """Runs a task and returns it ended; raises TaskFailed if it failed (unless not check)."""
        return self._loop.run(self._client.run(spec, timeout=timeout, check=check))

    def wait(self, task: Task | str, *, timeout: float | None = None, check: bool = True) -> Task:
        """`task` once it has ended."""
        return self._loop.run(self._client.wait(task, timeout=timeout, check=check))

    def get(self, task_id: str) -> Task:
        """The task as it stands."""
        return self._loop.run(self._client.get(task_id))

    def list_page(
        self,
        *,
        status: TaskStatus | str | None = None,
        labels: Mapping[str, str] | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> TaskPage:
        """One page of the tenant's tasks, newest first, as AsyncClient.list_page."""
        return self._loop.run(
            self._client.list_page(
                status=status, labels=labels, page_size=page_size, page_token=page_token
            )
        )

    def list_tasks(
        self,
        *,
        status: TaskStatus | str | None = None,
        labels: Mapping[str, str] | None = None,
        page_size: int = 0,
    ) -> Generator[Task, None, None]:
        """The tenant's tasks across pages, each page asked for when it is reached."""
        tasks = self._client.list_tasks(status=status, labels=labels, page_size=page_size)
        return self._iterated(tasks)

    def _iterated(self, source: AsyncIterator[Value]) -> Generator[Value, None, None]:
        """`source`'s items, each awaited on the client's loop; closed when left.

        Left after the client closed (dropped past its `with`), there is nothing to close:
        the client's close ended `source` with its loop.
        """
        try:
            while True:
                try:
                    yield self._loop.run(_next_of(source))
                except StopAsyncIteration:
                    return
        finally:
            close = getattr(source, "aclose", None)
            if close is not None and not self._loop.stopped:
                self._loop.run(close())

    def create_tasks(
        self, specs: Iterable[SpecLike], *, timeout: float | None = None
    ) -> list[BatchItem]:
        """Queues any number of tasks, in calls of at most 1,000; one BatchItem per spec.

        As AsyncClient.create_tasks: a call that fails after an earlier one went
        through raises BatchIncomplete.
        """
        return self._loop.run(self._client.create_tasks(specs, timeout=timeout))

    def cancel(self, task: Task | str) -> Task:
        """Cancels a task that has not ended."""
        return self._loop.run(self._client.cancel(task))

    def cancel_tasks(
        self, tasks: Iterable[Task | str], *, timeout: float | None = None
    ) -> list[CancelItem]:
        """Cancels any number of tasks, in calls of at most 1,000; one CancelItem per id.

        As AsyncClient.cancel_tasks.
        """
        return self._loop.run(self._client.cancel_tasks(tasks, timeout=timeout))

    def download(self, artifact: Artifact | str, *, timeout: float | None = None) -> bytes:
        """The bytes of an artifact: one of a task's `result.artifacts`, or its id."""
        return self._loop.run(self._client.download(artifact, timeout=timeout))

    def download_to(
        self,
        artifact: Artifact | str,
        path: str | os.PathLike[str],
        *,
        timeout: float | None = None,
    ) -> Path:
        """Saves the bytes of an artifact as the file `path`, whole or not at all; returns it."""
        return self._loop.run(self._client.download_to(artifact, path, timeout=timeout))

    def webhook_secret(self, *, rotate: bool = False) -> WebhookSecret:
        """The tenant's secret that signs callbacks; with `rotate`, a new one replaces it."""
        return self._loop.run(self._client.webhook_secret(rotate=rotate))

    def screenshot(self, url: str, **options: Any) -> bytes:
        """The page at `url` as an image."""
        return self._loop.run(self._client.screenshot(url, **options))

    def pdf(self, url: str, **options: Any) -> bytes:
        """The page at `url` printed as a PDF."""
        return self._loop.run(self._client.pdf(url, **options))

    def content(self, url: str, **options: Any) -> str:
        """The page's HTML, or its text with format="text"."""
        return self._loop.run(self._client.content(url, **options))

    def extract(self, url: str, fields: Mapping[str, str], **options: Any) -> Any:
        """Values picked by CSS selectors."""
        return self._loop.run(self._client.extract(url, fields, **options))

    def map(
        self, specs: Iterable[SpecLike], *, concurrency: int = 4, timeout: float | None = None
    ) -> Generator[Task, None, None]:
        """Runs the tasks, at most `concurrency` at a time, yielding each as it ends.

        close() it to stop early at once: the tasks still running are left to the farm.
        """
        return self._iterated(self._client.map(specs, concurrency=concurrency, timeout=timeout))

    def session(self, **spec: Any) -> Session:
        """A session of its own browser page, opened by `with` and closed after it."""
        return Session(self._loop, self._client.session(**spec))
