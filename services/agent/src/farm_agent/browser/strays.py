"""Browsers an earlier run of this agent left running: found by their profile folder, ended.

Every Chromium of an agent (the pool's, a session's, a spare) keeps its profile under
the agent's scratch directory. A killed agent's browsers die with it (Playwright's
pipe, the parent-death signal); should one not, the next start of the same agent
(same id, same FARM_HOME) ends it before it clears the directory, rather than leave
a browser of nobody's running for good.
"""

import contextlib
import logging
import os
import signal
import time
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

PROFILE_SWITCH = "--user-data-dir="
GONE_POLL_SECONDS = 0.05


def stray_browsers(scratch: Path) -> list[psutil.Process]:
    """Running processes (not this one) started with a profile folder under `scratch`."""
    prefix = f"{PROFILE_SWITCH}{scratch}{os.sep}"
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        with contextlib.suppress(psutil.Error):
            if process.pid == os.getpid() or process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if any(argument.startswith(prefix) for argument in process.info["cmdline"] or ()):
                found.append(process)
    return found


def end_stray_browsers(scratch: Path, timeout_seconds: float) -> int:
    """SIGKILLs the browsers left under `scratch` and their helpers; returns how many were found.

    A browser leads a process group of its own (a session's is started in a new
    session, Playwright detaches a task's), which holds its helpers: that group is
    ended. A group led by another process (or by this one) is not: only the stray
    itself is. Waits up to `timeout_seconds` for them to end, as their files are
    removed next.
    """
    strays = stray_browsers(scratch)
    if not strays:
        return 0
    pids = {process.pid for process in strays}
    own_group = os.getpgid(0)
    for process in strays:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            group = os.getpgid(process.pid)
            if group != own_group and (group in pids or not psutil.pid_exists(group)):
                os.killpg(group, signal.SIGKILL)
            else:
                os.kill(process.pid, signal.SIGKILL)
    log.warning(
        "ended %d browser process(es) an earlier run of this agent left running: %s",
        len(strays),
        sorted(pids),
    )
    deadline = time.monotonic() + timeout_seconds
    while stray_browsers(scratch) and time.monotonic() < deadline:
        time.sleep(GONE_POLL_SECONDS)
    return len(strays)
