"""Playwright's driver is restarted with the task browser it served, when nothing else is open.

Its node creeps over thousands of tasks (docs/performance.md "Agent memory"); with
`restart_driver` a fresh one comes with the browser replaced every `tasks_per_browser`
tasks. Tasks running or waiting then still run, no node or Chromium is left behind, and
a session browser (which connects through the driver) keeps it from being restarted.
"""

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner
from farm_agent.metrics import process_tree
from tests.integration.agent.conftest import HAVE_CHROMIUM, SettingsFactory
from tests.integration.agent.pool_browsers import browser_pids, page_task
from tests.pages import Site

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium"),
]

StartPool = Callable[..., Awaitable[tuple[BrowserPool, BrowserSpecRunner]]]


def drivers() -> set[int]:
    """Node processes under this test process (Playwright's drivers)."""
    found = set()
    for pid in process_tree(os.getpid()):
        try:
            if Path(f"/proc/{pid}/comm").read_bytes().startswith(b"node"):
                found.add(pid)
        except OSError:
            continue
    return found


def content_task(site: Site) -> tasks_pb2.TaskSpec:
    """The test page's content, with time to wait for a browser and a driver to start."""
    task = page_task(site, content=tasks_pb2.ContentOptions())
    task.timeout_ms = 60_000
    return task


@pytest.fixture
async def pools(
    tmp_path_factory: pytest.TempPathFactory, make_settings: SettingsFactory
) -> AsyncIterator[StartPool]:
    """Starts pools of one browser (and runners on them) with `overrides`; closes them."""
    started: list[BrowserPool] = []

    async def start(**overrides: Any) -> tuple[BrowserPool, BrowserSpecRunner]:
        # A short FARM_HOME keeps Chromium's socket path under the scratch directory.
        settings = make_settings(
            FARM_HOME=tmp_path_factory.mktemp("d"),
            min_browsers=1,
            max_browsers=1,
            **{"tasks_per_browser": 2, "restart_driver": True, **overrides},
        )
        pool = BrowserPool(settings)
        await pool.start()
        started.append(pool)
        return pool, BrowserSpecRunner(pool, settings)

    yield start
    for pool in started:
        await pool.close()


async def test_tasks_run_on_through_driver_restarts_and_leave_no_process_behind(
    pools: StartPool, site: Site
) -> None:
    others = drivers()  # drivers this test process started before (other tests')
    pool, runner = await pools()
    [first_driver] = drivers() - others
    task = content_task(site)

    # Three tasks at once: the third waits while the browser and its driver are replaced.
    captures = await asyncio.gather(*(runner.run(task) for _ in range(3)))
    captures += [await runner.run(task) for _ in range(2)]

    assert all("Hello, farm" in capture.artifacts[0].data.decode() for capture in captures)
    assert pool.driver.restarts == 2  # after tasks 2 and 4
    # One driver and one browser run, the first driver is gone: none is left behind.
    assert drivers() - others != {first_driver}
    assert len(drivers() - others) == 1
    assert len(browser_pids(pool.scratch_dir)) == 1
    await pool.close()
    assert drivers() - others == set()
    assert browser_pids(pool.scratch_dir) == []


async def test_a_session_browser_keeps_the_driver(pools: StartPool, site: Site) -> None:
    pool, runner = await pools()
    held = await pool.driver.hold()  # as a session browser (or a spare) does
    task = content_task(site)
    for _ in range(3):
        await runner.run(task)
    assert pool.driver.restarts == 0
    assert pool.playwright is held

    pool.driver.let_go()  # the session browser closed
    for _ in range(2):
        await runner.run(task)
    assert pool.driver.restarts == 1
    assert pool.playwright is not held


async def test_the_driver_is_not_restarted_unless_asked(pools: StartPool, site: Site) -> None:
    pool, runner = await pools(restart_driver=False)
    task = content_task(site)
    for _ in range(3):
        await runner.run(task)
    assert pool.driver.restarts == 0
