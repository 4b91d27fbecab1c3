"""One command on a session's current page: its setup change, its URL, the steps, the action.

The same steps and actions as a task's, run by the same code on the session's page
rather than a fresh one. Commands of one session run one at a time; their
artifacts are stored under the session's id, named after the command's number.
A command's `tabs` selects, opens or closes a page first (tabs.py). The pages and
downloads its page starts are noted in its result (openings.py).
A command's `screencast.start` starts recording before the rest of the command,
its `screencast.stop` stops after it; every result tells where the screencast stands.
"""

import asyncio
import dataclasses
from collections.abc import Coroutine
from typing import Any

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import Capture
from farm_agent.browser.navigation import shown_url
from farm_agent.browser.runner import Budget, browse
from farm_agent.errors import TaskFailure
from farm_agent.saved.keeper import CaptureKeeper
from farm_agent.sessions.openings import OPEN_WAIT_SECONDS, OpeningsWatch
from farm_agent.sessions.own_requests import OwnRequests
from farm_agent.sessions.session import OpenSession
from farm_agent.sessions.tabs import change_tabs, listed_tabs
from farm_core.cancel import Interrupted, unless_set
from farm_core.task_defaults import ACTIONS, DEFAULT_TIMEOUT_MS
from farm_core.task_errors import ErrorCode

SETTLE_MARGIN_SECONDS = 0.5
"""What a command keeps of its time after waiting for the pages it opened: its answer."""


def command_spec(command: sessions_pb2.SessionCommand) -> tasks_pb2.TaskSpec:
    """The command as the TaskSpec the runner's code reads (same field names)."""
    spec = tasks_pb2.TaskSpec(
        url=command.url,
        steps=command.steps,
        wait_until=command.wait_until,
        timeout_ms=command.timeout_ms or DEFAULT_TIMEOUT_MS,
        fail_on_http_error=command.fail_on_http_error,
        collect=command.collect,
    )
    for action in ACTIONS:
        if command.HasField(action):
            getattr(spec, action).CopyFrom(getattr(command, action))
    return spec


async def run_command(
    session: OpenSession,
    command: sessions_pb2.SessionCommand,
    keeper: CaptureKeeper,
    max_text_bytes: int,
    grant: str = "",
) -> tasks_pb2.TaskResult:
    """Runs the command within its time limit; raises TaskFailure with a stable code.

    `grant` is the command's own (SessionCommandOrder.grant), naming the baseline its
    screenshot compares with; without one the session's serves.
    """
    spec = command_spec(command)
    timeout_seconds = spec.timeout_ms / 1000
    deadline = asyncio.get_running_loop().time() + timeout_seconds
    # The wait for the session's earlier commands counts in the command's time: one that
    # could not start in time fails without running, rather than running after the
    # scheduler has told its caller it timed out.
    not_started = TaskFailure(
        ErrorCode.TIMEOUT,
        f"the command did not start within its {timeout_seconds:g} s: the session's "
        "earlier commands ran all that time; it did not run",
    )
    try:
        async with asyncio.timeout_at(deadline):
            await session.command_lock.acquire()
    except TimeoutError as error:
        raise not_started from error
    if asyncio.get_running_loop().time() >= deadline:
        session.command_lock.release()
        raise not_started
    try:
        return await _run_locked(session, command, spec, deadline, keeper, max_text_bytes, grant)
    finally:
        session.command_lock.release()


async def _run_locked(
    session: OpenSession,
    command: sessions_pb2.SessionCommand,
    spec: tasks_pb2.TaskSpec,
    deadline: float,
    keeper: CaptureKeeper,
    max_text_bytes: int,
    grant: str,
) -> tasks_pb2.TaskResult:
    """Runs the command, the session's command lock held, until `deadline` (loop time)."""
    timeout_seconds = spec.timeout_ms / 1000
    session.touch()
    try:
        async with asyncio.timeout_at(deadline):
            if command.HasField("tabs"):
                await change_tabs(session.browser, command.tabs)
            page = await session.current_page()
            await session.setup.change(command)
            if command.screencast.start:
                await session.screencasts.start(command.screencast.format)
            if command.HasField("dialog"):
                await session.dialogs.answer(command.dialog)
            else:
                session.dialogs.check_none()
            blocked_before = len(session.egress.blocked)
            own_requests = OwnRequests(page)
            own_requests.start()
            openings = OpeningsWatch(session.browser, page)
            await openings.start()
            try:
                capture = await _until_dialog(
                    session,
                    browse(
                        page,
                        spec,
                        Budget(max(deadline - asyncio.get_running_loop().time(), 0.001)),
                        session.egress,
                        max_text_bytes,
                        navigate=bool(spec.url),
                        blocked_since=blocked_before,
                        observer=session.observer,
                    ),
                )
                await _settled(openings, deadline)
            finally:
                own_requests.stop()
                await openings.stop()
            if capture is not None:
                own_requests.keep_own(capture.result)
    except TimeoutError as error:
        raise TaskFailure(
            ErrorCode.TIMEOUT,
            f"timeoutMs: the command did not finish within its {timeout_seconds:g} s",
        ) from error
    finally:
        session.touch()
    session.commands += 1
    if capture is None:
        result = tasks_pb2.TaskResult(
            final_url=await shown_url(page), dialog=session.dialogs.described()
        )
        await _note_openings(openings, result)
        result.screencast.CopyFrom(session.screencasts.status())
        return result
    prefix = f"command-{session.commands}-"
    owner = dataclasses.replace(session.owner, grant=grant) if grant else session.owner
    result = await keeper.keep(owner, capture, prefix)
    await _note_openings(openings, result)
    if command.HasField("tabs"):
        result.json.CopyFrom(await listed_tabs(session.browser))
    if command.screencast.stop:
        await _stop_screencast(session, keeper, result)
    result.screencast.CopyFrom(session.screencasts.status())
    return result


async def _settled(openings: OpeningsWatch, deadline: float) -> None:
    """Waits for the pages the command asked to open, within the command's time (less a margin)."""
    left = deadline - asyncio.get_running_loop().time() - SETTLE_MARGIN_SECONDS
    if left > 0:
        await openings.settle(min(left, OPEN_WAIT_SECONDS))


async def _note_openings(openings: OpeningsWatch, result: tasks_pb2.TaskResult) -> None:
    """Adds the pages the command opened and the downloads it started to `result`."""
    result.opened_pages.extend(await openings.opened_pages())
    result.refused_downloads.extend(openings.refused_downloads())


async def _until_dialog(session: OpenSession, work: Coroutine[Any, Any, Capture]) -> Capture | None:
    """What `work` captured; None if the page opened a dialog first (the rest waits for it)."""
    try:
        return await unless_set(work, session.dialogs.shown, "a command held by a dialog")
    except Interrupted:
        return None


async def _stop_screencast(
    session: OpenSession, keeper: CaptureKeeper, result: tasks_pb2.TaskResult
) -> None:
    """Stops the session's screencast (outside the command's time limit: ffmpeg has its own)."""
    try:
        video = await session.screencasts.stop(
            lambda artifact: keeper.upload(session.owner, artifact)
        )
    finally:
        session.touch()
    if video is not None:
        result.artifacts.append(video)
