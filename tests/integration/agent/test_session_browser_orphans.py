"""No session Chromium outlives a SIGKILLed agent, even one killed while the browser starts.

The browser is started through setpriv's parent-death signal; an agent killed between
the fork and setpriv's prctl left a Chromium running under init (seen after the
session fault tests). A slow `setpriv` first on PATH holds that window open. Should a
browser be left all the same, the agent's next start ends it.
"""

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from farm_agent.browser.chromium import CHROMIUM_FLAGS
from farm_agent.browser.temp_dirs import TempDirs
from farm_agent.sessions.browser import AUTOMATION_FLAGS, PORT_FILE
from tests.helpers import assert_eventually
from tests.integration.agent.conftest import CHROMIUM, HAVE_CHROMIUM, agent_settings, running_pool

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium"),
]

REPO = Path(__file__).resolve().parents[3]
REAL_SETPRIV = Path("/usr/bin/setpriv")
# Stands in for setpriv: says it was forked (its pid), waits for `go`, then runs the real one.
SLOW_SETPRIV = f"""#!/bin/sh
echo $$ > "$FARM_TEST_WINDOW/forked"
i=0
while [ ! -e "$FARM_TEST_WINDOW/go" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
exec {REAL_SETPRIV} "$@"
"""


def naming(folder: Path) -> list[psutil.Process]:
    """Running processes whose command line names a path under `folder`."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        with contextlib.suppress(psutil.Error):
            if process.info["status"] != psutil.STATUS_ZOMBIE and any(
                str(folder) in argument for argument in process.info["cmdline"] or ()
            ):
                found.append(process)
    return found


def runs(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def exe_of(pid: int) -> str:
    """The executable `pid` runs now; empty once it has ended."""
    try:
        return psutil.Process(pid).exe()
    except psutil.Error:
        return ""


@contextlib.contextmanager
def groups_ended(*groups: list[int]) -> Iterator[None]:
    """SIGKILLs the process groups whose ids the lists hold by the end of the block."""
    try:
        yield
    finally:
        for group in {pid for pids in groups for pid in pids}:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)


@pytest.mark.skipif(not REAL_SETPRIV.exists(), reason="needs util-linux's setpriv")
async def test_an_agent_killed_before_the_death_signal_is_set_leaves_no_browser(
    tmp_path: Path,
) -> None:
    window = tmp_path / "window"
    bin_dir = tmp_path / "bin"
    for folder in (window, bin_dir):
        folder.mkdir()
    (bin_dir / "setpriv").write_text(SLOW_SETPRIV)
    (bin_dir / "setpriv").chmod(0o755)
    browser_folder = tmp_path / "session"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FARM_TEST_WINDOW": str(window),
    }
    agent = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tests.integration.agent.session_browser_process", browser_folder),
        cwd=REPO,
        env=env,
        start_new_session=True,
    )
    launcher: list[int] = []
    try:
        with groups_ended([agent.pid], launcher):
            forked = window / "forked"
            await assert_eventually(
                lambda: forked.exists() and forked.read_text().strip(),
                within=60,
                message="the stand-in agent never started its browser",
            )
            # The browser's process group: it was started in a session of its own.
            launcher.append(int(forked.read_text()))
            agent.kill()
            await asyncio.wait_for(agent.wait(), 10)
            (window / "go").touch()
            # Either what was forked ends, or it has become Chromium (the death signal
            # came too late to be sent): wait for one of the two.
            await assert_eventually(
                lambda: not runs(launcher[0]) or "chromium" in exe_of(launcher[0]),
                within=30,
                message="the browser's launcher neither ended nor started Chromium",
            )
            left = [
                f"{process.pid} {process.info['cmdline'][:1]}" for process in naming(browser_folder)
            ]
            assert not runs(launcher[0]) and not left, f"a killed agent's browser runs on: {left}"
    finally:
        # The killed stand-in's TMPDIR in /tmp (its folder is too deep to hold it), as
        # the agent's next start would sweep it.
        await asyncio.to_thread(TempDirs(tmp_path / "t").sweep)


async def test_an_agent_start_ends_the_browsers_its_earlier_run_left(tmp_path: Path) -> None:
    settings = agent_settings(tmp_path / "home", id="restarted", min_browsers=0)
    scratch = settings.scratch_dir().resolve()
    # A spare's browser as a killed run of this agent left it: profile under its scratch.
    profile = scratch / "sessions" / "spare-0" / "browser" / "profile"
    profile.mkdir(parents=True)
    temp_dir = Path(tempfile.mkdtemp(prefix="farm-stray-"))
    # Its own pick of port, so that it writes the port file this test waits for.
    arguments = [
        *CHROMIUM_FLAGS,
        *AUTOMATION_FLAGS,
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "about:blank",
    ]
    left = await asyncio.create_subprocess_exec(
        CHROMIUM,
        *arguments,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HOME": str(temp_dir), "TMPDIR": str(temp_dir)},
        start_new_session=True,
    )
    try:
        with groups_ended([left.pid]):
            await assert_eventually(
                (profile / PORT_FILE).exists, within=60, message="the left browser did not start"
            )
            async with running_pool(settings):
                await assert_eventually(
                    lambda: left.returncode is not None and not naming(scratch),
                    within=30,
                    message=lambda: f"the earlier run's browser runs on: {naming(scratch)}",
                )
    finally:
        await asyncio.wait_for(left.wait(), 10)
        shutil.rmtree(temp_dir, ignore_errors=True)
