"""The browser pool: fresh contexts, recycling, crash recovery, idle closing, scratch space."""

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser
from prometheus_client import REGISTRY

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner
from farm_agent.errors import TaskFailure
from farm_agent.metrics import process_tree
from farm_agent.settings import AgentSettings
from farm_core.task_errors import ErrorCode
from tests.helpers import assert_eventually
from tests.integration.agent.conftest import SettingsFactory
from tests.integration.agent.pool_browsers import (
    browser_pids,
    page_task,
    renderers_frozen_as_they_start,
)
from tests.pages import Site

pytestmark = pytest.mark.integration


@pytest.fixture
def short_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A short FARM_HOME keeps Chromium's socket path under the scratch directory.
    return tmp_path_factory.mktemp("h")


StartPool = Callable[..., Awaitable[BrowserPool]]


@pytest.fixture
async def pools(short_home: Path, make_settings: SettingsFactory) -> AsyncIterator[StartPool]:
    started: list[BrowserPool] = []

    async def start(**overrides: Any) -> BrowserPool:
        settings = make_settings(FARM_HOME=short_home, id=f"p{len(started)}", **overrides)
        pool = BrowserPool(settings)
        await pool.start()
        started.append(pool)
        return pool

    yield start
    for pool in started:
        await pool.close()


def own_resident_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_each_task_gets_a_fresh_context(pools: StartPool) -> None:
    pool = await pools(max_browsers=1)
    async with pool.new_context() as (pooled, first):
        assert pooled.browser is first.browser
        await first.add_cookies([{"name": "seen", "value": "1", "url": "http://example.test/"}])
        assert len(await first.cookies()) == 1
    async with pool.new_context() as (_, second):
        assert second is not first
        assert await second.cookies() == []
        assert second.browser is first.browser


async def test_a_browser_is_replaced_after_tasks_per_browser_tasks(pools: StartPool) -> None:
    pool = await pools(min_browsers=1, max_browsers=1, tasks_per_browser=2)
    browsers: list[Browser] = []
    for _ in range(3):
        async with pool.new_context() as (_, context):
            assert context.browser is not None
            browsers.append(context.browser)
    assert browsers[0] is browsers[1]
    assert browsers[2] is not browsers[0]
    assert not browsers[0].is_connected()
    assert browsers[2].is_connected()
    assert pool.running_browsers == 1


async def test_a_killed_browser_is_replaced_and_the_next_task_succeeds(
    pools: StartPool, make_settings: Callable[..., AgentSettings], site: Site
) -> None:
    pool = await pools(min_browsers=1, max_browsers=1)
    runner = BrowserSpecRunner(pool, make_settings())
    task = page_task(site, content=tasks_pb2.ContentOptions())
    await runner.run(task)
    [pid] = browser_pids(pool.scratch_dir)

    os.kill(pid, signal.SIGKILL)

    capture = await runner.run(task)
    assert "Hello, farm" in capture.artifacts[0].data.decode()
    [new_pid] = browser_pids(pool.scratch_dir)
    assert new_pid != pid


@pytest.mark.parametrize("isolation", ["warm", "context"])
async def test_tasks_on_a_browser_killed_for_stalling_end_at_once_as_crashed(
    pools: StartPool,
    make_settings: Callable[..., AgentSettings],
    site: Site,
    isolation: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A SIGSTOPped browser is given up once a warm context cannot be reset; its tasks end then."""
    settings = {"min_browsers": 1, "max_browsers": 1, "close_timeout_seconds": 1.0}
    pool = await pools(**settings, warm_contexts=2)
    runner = BrowserSpecRunner(pool, make_settings(**settings, isolation=isolation))
    page = f"long-{isolation}"
    # Without the kill noticed it would wait out its 30 s.
    running = asyncio.create_task(
        runner.run(tasks_pb2.TaskSpec(url=site.url(f"/count/{page}?ms=40000"), timeout_ms=30_000))
    )
    # Another task's warm context on the same browser, reset when that task is done.
    async with pool.warm.lease("acme", {}, "a task that ends first") as warm:
        assert warm is not None
        await assert_eventually(lambda: site.in_flight.get(page), within=20)
        [pid] = browser_pids(pool.scratch_dir)
        # The whole browser, renderers too, as a frozen host or `kill -STOP` of its group.
        stopped = process_tree(pid)
        for each in stopped:
            os.kill(each, signal.SIGSTOP)
    try:
        with pytest.raises(TaskFailure) as caught:
            await running
    finally:
        for each in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(each, signal.SIGCONT)

    assert caught.value.code is ErrorCode.BROWSER_CRASHED, caught.value
    assert "killed" in caught.value.message
    # The reset's failure is named, though a timeout's str() is empty.
    assert "could not be reset; it is closed instead: TimeoutError()" in caplog.text


def probes(outcome: str) -> float:
    return REGISTRY.get_sample_value("agent_browser_probes_total", {"outcome": outcome}) or 0.0


@pytest.mark.parametrize("isolation", ["warm", "context"])
async def test_a_browser_whose_pages_no_longer_run_is_replaced_after_one_timeout(
    pools: StartPool,
    make_settings: Callable[..., AgentSettings],
    site: Site,
    isolation: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A browser that still opens and closes contexts but whose pages never run is given up.

    Its renderers are frozen as they start (as if they never came up): without the probe
    every task on it would wait out its whole time, and the browser would never be replaced.
    """
    settings = {"min_browsers": 1, "max_browsers": 1, "close_timeout_seconds": 1.0}
    pool = await pools(**settings)
    runner = BrowserSpecRunner(pool, make_settings(**settings, isolation=isolation))
    task = page_task(site, content=tasks_pb2.ContentOptions())
    task.timeout_ms = 1_500
    await runner.run(task)
    [pid] = browser_pids(pool.scratch_dir)
    failed_probes = probes("failed")
    later = tasks_pb2.TaskSpec()
    later.CopyFrom(task)
    later.timeout_ms = 30_000
    async with renderers_frozen_as_they_start(pid) as frozen:
        first = asyncio.create_task(runner.run(task))
        await assert_eventually(lambda: frozen, within=10)
        # Started on the same browser, still waiting for its page when the browser is given up.
        second = asyncio.create_task(runner.run(later))
        with pytest.raises(TaskFailure) as caught:
            await first
        assert caught.value.code is ErrorCode.TIMEOUT, caught.value
        with pytest.raises(TaskFailure) as caught:
            await second
        assert caught.value.code is ErrorCode.BROWSER_CRASHED, caught.value
        await pool.health.probes_done()
        # The very next task runs on another browser.
        capture = await runner.run(task)

    assert "Hello, farm" in capture.artifacts[0].data.decode()
    [new_pid] = browser_pids(pool.scratch_dir)
    assert new_pid != pid
    assert probes("failed") == failed_probes + 1
    # The warning names the browser given up, and why: a task on it timed out, or (warm) the
    # reset after the first task overran, the stuck task waiting for that context meanwhile.
    assert f"(pid {pid}) after" in caplog.text
    assert "and a probe page did not evaluate 1 within 2 s" in caplog.text
    if isolation == "context":
        assert "a task on it timed out and a probe page" in caplog.text


async def test_a_warm_task_that_timed_out_opening_its_page_probes_its_browser(
    pools: StartPool, make_settings: Callable[..., AgentSettings], site: Site
) -> None:
    """A new warm context's page opens within the lease: its task had the browser already."""
    settings = {"min_browsers": 1, "max_browsers": 1, "close_timeout_seconds": 1.0}
    pool = await pools(**settings)
    runner = BrowserSpecRunner(pool, make_settings(**settings, isolation="warm"))
    task = page_task(site)
    task.timeout_ms = 1_500
    [pid] = browser_pids(pool.scratch_dir)
    failed_probes = probes("failed")

    async with renderers_frozen_as_they_start(pid):
        with pytest.raises(TaskFailure) as caught:
            await runner.run(task)
        assert caught.value.code is ErrorCode.TIMEOUT, caught.value
        await pool.health.probes_done()

    assert probes("failed") == failed_probes + 1
    assert pid not in browser_pids(pool.scratch_dir)


async def test_a_warm_reset_that_overruns_has_its_browser_probed(
    pools: StartPool,
    make_settings: Callable[..., AgentSettings],
    site: Site,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A task waiting for a warm context whose reset hangs times out before it gets a browser.

    That task probes none, so the reset's overrun has the browser probed: without it the
    browser, whose pages no longer run, was kept, and every later task on it timed out.
    """
    settings = {"min_browsers": 1, "max_browsers": 1, "close_timeout_seconds": 1.0}
    pool = await pools(**settings)
    runner = BrowserSpecRunner(pool, make_settings(**settings, isolation="warm"))
    task = page_task(site, content=tasks_pb2.ContentOptions())
    stuck = tasks_pb2.TaskSpec()
    stuck.CopyFrom(task)
    # Less than the reset's bound (1.5 s), which starts before it.
    stuck.timeout_ms = 1_000
    [pid] = browser_pids(pool.scratch_dir)
    failed_probes = probes("failed")

    async with contextlib.AsyncExitStack() as freezing:
        async with pool.warm.lease("", runner.context_options(task), "the task before") as warm:
            assert warm is not None
            # Its page's renderer too: the reset can neither leave that page nor replace it.
            frozen = await freezing.enter_async_context(renderers_frozen_as_they_start(pid))
            await assert_eventually(lambda: frozen, within=10)
        with pytest.raises(TaskFailure) as caught:
            await runner.run(stuck)
        assert caught.value.code is ErrorCode.TIMEOUT, caught.value
        await pool.warm.resets_done()
        await pool.health.probes_done()
        assert probes("failed") == failed_probes + 1
        # The very next task runs on another browser.
        capture = await runner.run(task)

    assert "Hello, farm" in capture.artifacts[0].data.decode()
    assert pid not in browser_pids(pool.scratch_dir)
    assert (
        f"(pid {pid}) after 1 task(s): a warm context's reset took over 1.5 s "
        "and a probe page did not evaluate 1 within 2 s"
    ) in caplog.text


async def test_a_browser_that_answers_its_probe_is_kept_after_a_slow_page_times_out(
    pools: StartPool, make_settings: Callable[..., AgentSettings], site: Site
) -> None:
    pool = await pools(min_browsers=1, max_browsers=1)
    runner = BrowserSpecRunner(pool, make_settings(isolation="context"))
    [pid] = browser_pids(pool.scratch_dir)
    passed_probes = probes("passed")

    with pytest.raises(TaskFailure) as caught:
        await runner.run(tasks_pb2.TaskSpec(url=site.url("/slow?ms=4000"), timeout_ms=1_000))
    assert caught.value.code is ErrorCode.TIMEOUT, caught.value
    await pool.health.probes_done()

    assert probes("passed") == passed_probes + 1
    assert browser_pids(pool.scratch_dir) == [pid]


async def test_a_task_that_timed_out_before_it_got_a_browser_probes_none(
    pools: StartPool, make_settings: Callable[..., AgentSettings], site: Site
) -> None:
    """Probing the browsers it never ran on would only open contexts on busy browsers."""
    pool = await pools(min_browsers=1, max_browsers=1, tasks_per_browser=1)
    runner = BrowserSpecRunner(pool, make_settings(isolation="context"))
    task = page_task(site)
    task.timeout_ms = 1_000
    tried = probes("passed") + probes("failed")

    # The only browser takes no more tasks (its one task is running) and no other may start.
    async with pool.new_context():
        with pytest.raises(TaskFailure) as caught:
            await runner.run(task)
        assert caught.value.code is ErrorCode.TIMEOUT, caught.value
        await pool.health.probes_done()

    assert probes("passed") + probes("failed") == tried


async def test_a_task_that_timed_out_opening_its_context_gives_its_lease_back(
    pools: StartPool, make_settings: Callable[..., AgentSettings], site: Site
) -> None:
    """A lease kept by a cancelled opening would keep its browser from ever retiring."""
    pool = await pools(min_browsers=1, max_browsers=1, tasks_per_browser=2)
    runner = BrowserSpecRunner(pool, make_settings(isolation="context"))
    task = page_task(site, content=tasks_pb2.ContentOptions())
    stopped = tasks_pb2.TaskSpec()
    stopped.CopyFrom(task)
    stopped.timeout_ms = 1_500
    [pid] = browser_pids(pool.scratch_dir)

    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(TaskFailure) as caught:
            await runner.run(stopped)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert caught.value.code is ErrorCode.TIMEOUT, caught.value
    # Its second task retires it; the third needs the next browser.
    await runner.run(task)
    capture = await runner.run(task)

    assert "Hello, farm" in capture.artifacts[0].data.decode()
    assert browser_pids(pool.scratch_dir) != [pid]


async def test_browsers_above_the_minimum_close_when_idle(pools: StartPool) -> None:
    pool = await pools(min_browsers=1, max_browsers=2, browser_idle_seconds=0.3)
    async with pool.new_context() as (_, first), pool.new_context() as (_, second):
        assert first.browser is not second.browser
        assert pool.running_browsers == 2
        assert REGISTRY.get_sample_value("agent_active_browsers") == 2
    await assert_eventually(lambda: pool.running_browsers == 1, within=10)
    assert REGISTRY.get_sample_value("agent_active_browsers") == 1


async def test_chromium_keeps_its_files_in_the_agent_scratch_dir(
    pools: StartPool, short_home: Path
) -> None:
    pool = await pools(max_browsers=1)
    scratch = pool.scratch_dir
    assert scratch == (short_home / "agents" / "p0" / "tmp").resolve()
    async with pool.new_context():
        profiles = [entry.name for entry in scratch.iterdir()]
        assert any(name.startswith("playwright_chromiumdev_profile-") for name in profiles)
        assert browser_pids(scratch)
    await pool.close()
    assert not scratch.exists()


async def test_memory_gauge_counts_the_browser_processes(pools: StartPool) -> None:
    pool = await pools(max_browsers=1)
    own_rss = own_resident_bytes()
    async with pool.new_context():
        memory = REGISTRY.get_sample_value("agent_memory_usage_bytes")
    assert memory is not None
    assert memory > own_rss + 10 * 1024 * 1024


async def test_a_pool_that_cannot_launch_chromium_closes_its_egress_listener(
    short_home: Path, make_settings: SettingsFactory
) -> None:
    false = Path("/bin/false")
    settings = make_settings(FARM_HOME=short_home, chromium_path=false, headless_shell_path=false)
    pool = BrowserPool(settings)
    with pytest.raises(TaskFailure, match="cannot launch Chromium /bin/false"):
        await pool.start()

    listener = pool.egress.default_session
    assert listener.port
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(listener.host, listener.port)
