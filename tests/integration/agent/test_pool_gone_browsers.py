"""Tasks on a pool's browser that goes away end at once, wherever they wait on it."""

import asyncio
import os
import signal
from pathlib import Path

import pytest

from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner
from farm_agent.errors import TaskFailure
from farm_core.task_errors import ErrorCode
from tests.helpers import assert_eventually
from tests.integration.agent.conftest import SettingsFactory
from tests.integration.agent.pool_browsers import (
    browser_pids,
    page_task,
    renderer_pids,
    renderers_frozen_as_they_start,
)
from tests.pages import Site

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("isolation", ["warm", "context"])
async def test_a_task_whose_browser_dies_while_its_page_opens_ends_at_once_as_crashed(
    tmp_path_factory: pytest.TempPathFactory,
    make_settings: SettingsFactory,
    site: Site,
    isolation: str,
) -> None:
    """Playwright never answers a new page still opening when its browser disconnects.

    The task's renderer is stopped as it starts, so its page cannot open; its browser
    is then killed (as by a crash or the OOM killer). Without the pool's watch on its
    browser the task waited out its whole 20 s and failed TIMEOUT.
    """
    # A short FARM_HOME keeps Chromium's socket path under the scratch directory.
    home: Path = tmp_path_factory.mktemp("h")
    settings = make_settings(
        FARM_HOME=home, min_browsers=1, max_browsers=1, isolation=isolation, warm_contexts=1
    )
    pool = BrowserPool(settings)
    await pool.start()
    try:
        runner = BrowserSpecRunner(pool, settings)
        [pid] = browser_pids(pool.scratch_dir)
        before = renderer_pids(pid)
        task = page_task(site)
        task.timeout_ms = 20_000
        async with renderers_frozen_as_they_start(pid) as frozen:
            running = asyncio.create_task(runner.run(task))
            # A renderer started for the task: its page is opening, and cannot now.
            await assert_eventually(lambda: frozen - before, within=10)
            os.kill(pid, signal.SIGKILL)
            with pytest.raises(TaskFailure) as caught:
                await running
    finally:
        await pool.close()

    assert caught.value.code is ErrorCode.BROWSER_CRASHED, caught.value
    assert "went away" in caught.value.message
