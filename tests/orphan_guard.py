"""Stops what a killed pytest process started: `python tests/orphan_guard.py PID`.

A test farm's processes (services, NATS, Envoy, SeaweedFS, Chromium) are children of
the pytest process that started them and are stopped by it. When that process is
killed (a run interrupted, a worker lost), they would be left running, reparented to
init, where nothing finds them. This guard notes every process under PID once a second
and, once PID is gone, SIGKILLs those still there (each checked by its start time, so a
reused PID is left alone). The conftest starts one guard per pytest process and stops it
after the session's own teardown.
"""

import contextlib
import sys
import time

import psutil

LOOK_SECONDS = 1.0


def descendants(watched: psutil.Process) -> dict[int, float]:
    """Every process under `watched` (but this guard), by PID, with its start time."""
    found: dict[int, float] = {}
    with contextlib.suppress(psutil.Error):
        for child in watched.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if child.pid != psutil.Process().pid:
                    found[child.pid] = child.create_time()
    return found


def kill_left(left: dict[int, float]) -> None:
    """SIGKILLs each of `left` still running as the same process."""
    for pid, started in left.items():
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            if process.create_time() == started:
                process.kill()


def running(process: psutil.Process) -> bool:
    """Whether `process` (the same one, not a reuse of its PID) still runs."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def guard(pid: int) -> None:
    """Notes PID's descendants until it is gone, then kills those left.

    Prints "watching PID" once it has looked the first time.
    """
    watched = psutil.Process(pid)
    seen: dict[int, float] = {}
    looked = False
    while running(watched):
        # Merged, not replaced: a grandchild reparented to init when its parent died
        # (an agent's Chromium) is no longer under PID but is still ours.
        seen.update(descendants(watched))
        if not looked:
            print(f"watching {pid}", flush=True)
            looked = True
        time.sleep(LOOK_SECONDS)
    kill_left(seen)


if __name__ == "__main__":
    with contextlib.suppress(psutil.NoSuchProcess, KeyboardInterrupt):
        guard(int(sys.argv[1]))
