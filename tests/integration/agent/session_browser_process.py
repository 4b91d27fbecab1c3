"""A stand-in agent for orphan tests: launches one session browser as the agent does, then waits.

`python -m tests.integration.agent.session_browser_process FOLDER` starts Playwright and
SessionBrowser.launch in FOLDER; the test SIGKILLs it at the moment it studies.
"""

import asyncio
import sys
from pathlib import Path

from playwright.async_api import async_playwright

from farm_agent.browser.temp_dirs import TempDirs
from farm_agent.sessions.browser import LaunchOptions, SessionBrowser
from farm_core.runtime import EventLoop, run
from tests.integration.agent.conftest import CHROMIUM


async def launch_and_wait(folder: Path) -> None:
    """Launches a session browser in `folder` (on the agent's loop) and waits to be killed."""
    async with async_playwright() as playwright:
        await SessionBrowser.launch(
            playwright,
            LaunchOptions(
                CHROMIUM, folder, proxy_arguments=(), temp_dirs=TempDirs(folder.parent / "t")
            ),
        )
        await asyncio.Event().wait()


if __name__ == "__main__":
    run(launch_and_wait(Path(sys.argv[1])), EventLoop.UVLOOP)
