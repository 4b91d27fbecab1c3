"""Browser faults in real Chromium: each ends in a clear error and the next task still runs."""

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from google.protobuf import json_format
from nats.js import JetStreamContext
from playwright.async_api import Browser
from prometheus_client import REGISTRY

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner
from farm_agent.errors import TaskFailure
from farm_agent.metrics import process_tree
from farm_agent.settings import AgentSettings
from farm_core.task_errors import ErrorCode
from tests.helpers import assert_eventually, ends_without_hanging
from tests.integration.agent.conftest import (
    FAILED,
    SUCCEEDED,
    Events,
    StartIntake,
    content_of,
    publish,
    running_pool,
)
from tests.pages import Site

pytestmark = pytest.mark.integration

# Far beyond the bounds under test (seconds), which a loaded machine stretches a little:
# it only tells work that would never end.
HANG_GUARD_SECONDS = 60.0


@pytest.fixture
def runner(
    shared_pool: BrowserPool, make_settings: Callable[..., AgentSettings]
) -> BrowserSpecRunner:
    return BrowserSpecRunner(shared_pool, make_settings())


def page_events(kind: str) -> float:
    return REGISTRY.get_sample_value("agent_page_events_total", {"kind": kind}) or 0.0


async def failure_of(runner: BrowserSpecRunner, spec: tasks_pb2.TaskSpec) -> TaskFailure:
    with pytest.raises(TaskFailure) as caught:
        await runner.run(spec)
    return caught.value


def renderer_processes(pool: BrowserPool) -> list[int]:
    """The Chromium renderers of `pool`'s browsers.

    Only the pool's: this worker may run a whole farm too (its agents are children
    of this process), and killing that farm's renderers would crash its sessions.
    """
    found = []
    for browser in main_browser_pids(pool.scratch_dir):
        for pid in process_tree(browser):
            with contextlib.suppress(OSError):
                if b"--type=renderer" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(pid)
    return found


async def assert_next_task_runs(runner: BrowserSpecRunner, site: Site) -> None:
    capture = await runner.run(content_of(site))
    assert capture.result.title == "Test page"


async def test_a_renderer_crash_is_browser_crashed_and_the_next_task_runs(
    runner: BrowserSpecRunner, shared_pool: BrowserPool, site: Site
) -> None:
    crashes = page_events("crash")
    # The renderer is killed while the page runs, as a renderer bug or the OOM killer would.
    # (chrome://crash would do it too, but agents refuse every scheme but http and https.)
    task = asyncio.create_task(failure_of(runner, content_of(site, "/hang", timeout_ms=15_000)))
    await assert_eventually(lambda: site.hits.get("/hang", 0) > 0, message="/hang not loaded")
    await asyncio.sleep(0.3)
    renderers = renderer_processes(shared_pool)
    assert renderers, "the pool's browser has no renderer to kill"
    for pid in renderers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    failure = await task
    assert failure.code is ErrorCode.BROWSER_CRASHED
    assert failure.retryable
    assert "crashed" in failure.message
    assert page_events("crash") == crashes + 1
    await assert_next_task_runs(runner, site)


async def test_a_page_that_allocates_until_it_dies_is_browser_crashed(
    runner: BrowserSpecRunner, site: Site
) -> None:
    failure = await failure_of(runner, content_of(site, "/memory", timeout_ms=20_000))
    assert failure.code is ErrorCode.BROWSER_CRASHED
    await assert_next_task_runs(runner, site)


async def test_a_hung_page_times_out_in_bounded_time_and_the_next_task_runs(
    runner: BrowserSpecRunner, site: Site
) -> None:
    # Its time limit (2 s), then closing the context (bounded by close_timeout_seconds,
    # 5 s); the page itself never ends, nor would the task without those bounds.
    failure = await ends_without_hanging(
        failure_of(runner, content_of(site, "/hang", timeout_ms=2000)),
        guard=HANG_GUARD_SECONDS,
        what="a task on a hung page",
    )
    assert failure.code is ErrorCode.TIMEOUT
    assert failure.retryable
    await assert_next_task_runs(runner, site)


async def test_a_page_that_hangs_after_its_load_times_out_naming_timeout_ms(
    runner: BrowserSpecRunner, site: Site
) -> None:
    # The navigation ends; the action then waits on the spinning page until the task's
    # own limit, which the failure names (it said only "the task did not finish").
    failure = await ends_without_hanging(
        failure_of(runner, content_of(site, "/hang-after-load", timeout_ms=2000)),
        guard=HANG_GUARD_SECONDS,
        what="a task on a page that hangs after its load",
    )
    assert failure.code is ErrorCode.TIMEOUT
    assert failure.message == "timeoutMs: the task did not finish within its 2 s"
    await assert_next_task_runs(runner, site)


async def test_dialogs_are_answered_so_the_page_goes_on(
    runner: BrowserSpecRunner, site: Site
) -> None:
    dialogs = page_events("dialog")
    spec = tasks_pb2.TaskSpec(
        url=site.url("/dialog"),
        timeout_ms=10_000,
        script=tasks_pb2.ScriptOptions(source="() => document.title"),
    )
    capture = await runner.run(spec)
    assert json_format.MessageToJson(capture.result.json) == '"confirm=false prompt=null"'
    assert page_events("dialog") == dialogs + 3


async def test_pop_ups_are_closed_and_the_task_keeps_its_page(
    runner: BrowserSpecRunner, site: Site
) -> None:
    popups = page_events("popup")
    spec = content_of(site, "/popup")
    # Until the pop-up has loaded or been closed: on a loaded machine the content could
    # be taken before the browser reported the pop-up.
    spec.steps.append(tasks_pb2.Step(wait_for="#popup-settled"))
    capture = await runner.run(spec)
    assert capture.result.title == "Opener"
    await assert_eventually(
        lambda: page_events("popup") == popups + 1, message="the pop-up was not seen"
    )


async def test_a_download_is_refused_for_good(runner: BrowserSpecRunner, site: Site) -> None:
    failure = await failure_of(runner, content_of(site, "/download"))
    assert failure.code is ErrorCode.DOWNLOAD_REFUSED
    assert not failure.retryable
    await assert_next_task_runs(runner, site)


async def test_a_crash_fails_the_task_with_its_code_and_the_agent_serves_the_next(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
    await start_intake(concurrency=1)
    crashing = content_of(site, "/memory")
    crashing.max_attempts = 1
    crashed = await events.final(await publish(js, crashing), within=30)
    assert crashed.status == FAILED
    assert (crashed.error.code, crashed.error.retryable) == ("BROWSER_CRASHED", True)

    after = await events.final(await publish(js, content_of(site)))
    assert after.status == SUCCEEDED


@pytest.fixture
async def stubborn_pool(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., AgentSettings]
) -> AsyncIterator[BrowserPool]:
    """A pool of one browser that gives a context 0.5 s to close."""
    settings = make_settings(
        FARM_HOME=tmp_path_factory.mktemp("k"),
        id="stubborn",
        max_browsers=1,
        close_timeout_seconds=0.5,
    )
    async with running_pool(settings) as pool:
        yield pool


def main_browser_pids(scratch: Path) -> set[int]:
    """PIDs of this test's main Chromium processes (those whose profile is under `scratch`)."""
    found = set()
    for pid in process_tree(os.getpid()):
        try:
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if f"--user-data-dir={scratch}".encode() in arguments and b"--type=" not in arguments:
            found.add(pid)
    return found


async def never(*, reason: str | None = None) -> None:
    await asyncio.Event().wait()


async def test_a_browser_that_cannot_close_a_context_is_killed_and_replaced(
    stubborn_pool: BrowserPool,
) -> None:
    killed = REGISTRY.get_sample_value("agent_browsers_killed_total") or 0.0
    [stuck_pid] = main_browser_pids(stubborn_pool.scratch_dir)

    async def use_a_context_that_never_closes() -> Browser:
        async with stubborn_pool.new_context() as (_, context):
            stuck = context.browser
            assert stuck is not None
            # As with a renderer that hangs: neither the context nor the browser closes.
            context.close = never  # type: ignore[method-assign]
            stuck.close = never  # type: ignore[method-assign]
        return stuck

    # Given 0.5 s to close, then killed; without that bound the block would never end.
    stuck = await ends_without_hanging(
        use_a_context_that_never_closes(), guard=HANG_GUARD_SECONDS, what="the context's close"
    )
    assert REGISTRY.get_sample_value("agent_browsers_killed_total") == killed + 1
    async with stubborn_pool.new_context() as (_, fresh):
        assert fresh.browser is not stuck
        assert stuck_pid not in main_browser_pids(stubborn_pool.scratch_dir)
