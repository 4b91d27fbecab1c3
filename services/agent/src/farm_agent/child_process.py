"""Child processes of the agent: started without Python in the fork, awaited by pidfd.

uvloop's spawn (asyncio.create_subprocess_exec on the agent's loop) runs Python's
after-fork hooks in the forked child before it execs (uvloop issue 749), and Python
code in a fork of the agent's threads crashes now and then (a segfault in
threading's after-fork hook was seen): the child then never runs its program.
CPython's subprocess runs no Python between fork and exec (vfork on Linux), so the
agent's children (session browsers, ffmpeg, Playwright's driver) are started by it, in a thread, and
awaited from the loop through their pidfd.
"""

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from typing import IO, Any


class ChildProcess:
    """A child started by CPython's subprocess: its pid, its exit status, a wait for it."""

    def __init__(self, popen: "subprocess.Popen[bytes]") -> None:
        self._popen = popen

    @property
    def pid(self) -> int:
        """The child's process id (its group's, too: it leads a session of its own)."""
        return self._popen.pid

    @property
    def stdin(self) -> IO[bytes] | None:
        """The write end of the child's stdin, when it was started with stdin=PIPE."""
        return self._popen.stdin

    @property
    def stdout(self) -> IO[bytes] | None:
        """The read end of the child's stdout, when it was started with stdout=PIPE."""
        return self._popen.stdout

    @property
    def returncode(self) -> int | None:
        """The child's exit status once it has ended (it is reaped then), else None."""
        return self._popen.poll()

    def kill(self) -> None:
        """SIGKILL to the child (not reaped here: wait() or returncode does that)."""
        self._popen.kill()

    async def wait(self) -> int:
        """Waits for the child to end, without a thread: its pidfd turns readable then."""
        if (code := self._popen.poll()) is not None:
            return code
        loop = asyncio.get_running_loop()
        # Not reaped yet (only this object reaps it), so its pid is still the child's.
        pidfd = os.pidfd_open(self._popen.pid)
        try:
            ended: asyncio.Future[None] = loop.create_future()

            def readable() -> None:
                if not ended.done():
                    ended.set_result(None)

            loop.add_reader(pidfd, readable)
            try:
                await ended
            finally:
                loop.remove_reader(pidfd)
        finally:
            os.close(pidfd)
        return self._popen.wait()


async def start_child(command: Sequence[str], **options: Any) -> ChildProcess:
    """Starts `command` with subprocess.Popen `options` in a thread; see the module's docstring.

    A call cancelled while the thread starts the child still gets it ended (SIGKILL, to
    its group if it leads one) and reaped, so no child is left behind.
    """
    starting = asyncio.ensure_future(asyncio.to_thread(_popen, command, options))
    try:
        return ChildProcess(await asyncio.shield(starting))
    except asyncio.CancelledError:
        starting.add_done_callback(_end_unwanted)
        raise


def _popen(command: Sequence[str], options: dict[str, Any]) -> "subprocess.Popen[bytes]":
    return subprocess.Popen(command, **options)


def _end_unwanted(starting: "asyncio.Future[subprocess.Popen[bytes]]") -> None:
    """Kills and reaps the child a cancelled start_child went on to start."""
    if starting.cancelled() or starting.exception() is not None:
        return
    popen = starting.result()
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(popen.pid) == popen.pid:  # it leads a group: a browser and its helpers
            os.killpg(popen.pid, signal.SIGKILL)
        else:
            popen.kill()
    # Reaped here: a SIGKILLed process is gone within moments, and this path is rare.
    with contextlib.suppress(subprocess.TimeoutExpired):
        popen.wait(timeout=5)
