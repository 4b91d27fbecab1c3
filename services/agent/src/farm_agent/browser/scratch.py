"""The agent's scratch directory, where Chromium's profiles and temporary files go.

Emptied when the pool starts, after ending the browsers an earlier run of the agent
left there (and the temporary directories outside it that the run recorded).
"""

import asyncio
import logging
import shutil
from pathlib import Path

from farm_agent.browser.chromium import MAX_BROWSER_TMPDIR_CHARS
from farm_agent.browser.strays import end_stray_browsers
from farm_agent.browser.temp_dirs import TempDirs

log = logging.getLogger(__name__)


async def prepare_scratch(scratch: Path, temp_dirs: TempDirs, close_timeout_seconds: float) -> Path:
    """Empties `scratch` for a new run; returns where Chromium's own temporary files go.

    That is `scratch`, unless it is too deep for Chromium's socket path: then a
    recorded temporary directory outside it.
    """
    await asyncio.to_thread(end_stray_browsers, scratch, close_timeout_seconds)
    await asyncio.to_thread(temp_dirs.sweep)
    await asyncio.to_thread(shutil.rmtree, scratch, True)
    (scratch / "home").mkdir(parents=True)
    if len(str(scratch)) <= MAX_BROWSER_TMPDIR_CHARS:
        return scratch
    browser_tmp = await asyncio.to_thread(temp_dirs.make, "farm-agent-")
    log.warning(
        "the scratch directory %s is too deep for Chromium's socket path (over %d "
        "characters); Chromium's own temporary files go to %s; a shorter FARM_HOME "
        "keeps them under it",
        scratch,
        MAX_BROWSER_TMPDIR_CHARS,
        browser_tmp,
    )
    return browser_tmp
