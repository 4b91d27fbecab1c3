"""Playwright's driver (node) starts with no Python in its fork, at start and at restarts."""

from pathlib import Path

import psutil
import uvloop

from farm_agent.browser.driver import Driver
from farm_agent.settings import AgentSettings
from tests.fork_marks import fork_marks


def drivers() -> set[int]:
    """Node processes that are children of this test process."""
    return {child.pid for child in psutil.Process().children() if child.name().startswith("node")}


def test_no_python_runs_in_the_drivers_fork_at_start_and_restart_on_the_agents_loop(
    tmp_path: Path,
) -> None:
    # Playwright started node with asyncio.create_subprocess_exec, which on uvloop ran
    # the hooks in the child (uvloop issue 749): in a fork of the agent's threads that
    # crashed now and then.
    marks = tmp_path / "marks"
    settings = AgentSettings(FARM_HOME=str(tmp_path), restart_driver=True)
    others = drivers()

    async def start_restart_stop() -> tuple[str, str, bool]:
        driver = Driver(settings, tmp_path)
        await driver.start()
        try:
            # A call through the pipe each time: the driver answers it.
            first = driver.playwright.chromium.name
            restarted = await driver.restart()
            requests = await driver.playwright.request.new_context()
            await requests.dispose()
            second = driver.playwright.devices["Pixel 5"]["user_agent"]
        finally:
            await driver.stop()
        return first, second, restarted

    with fork_marks(marks):
        browser, user_agent, restarted = uvloop.run(start_restart_stop())
    assert not marks.exists(), marks.read_text()
    assert (browser, restarted) == ("chromium", True)
    assert "Android" in user_agent
    assert drivers() - others == set()
