"""Playwright's driver (node) started by CPython's subprocess, not the loop's spawn.

Playwright's PipeTransport starts node with asyncio.create_subprocess_exec, which on
uvloop runs Python's after-fork hooks in the forked child before it execs (uvloop
issue 749; see farm_agent.child_process). `ForklessPipeTransport` starts the same
command through `start_child` and reads and writes its pipes on the loop; the rest
of the transport (framing, stop) is Playwright's own. `forkless_driver` puts it in
place of PipeTransport for the Playwright clients made within its block.
"""

import asyncio
import contextlib
import subprocess
from collections.abc import Iterator

from playwright._impl import out_of_process
from playwright._impl._driver import (
    compute_driver_executable,
    get_driver_env,
    node_launch_error,
)
from playwright._impl.transport import PipeTransport, _get_stderr_fileno

from farm_agent.child_process import ChildProcess, start_child

# PipeTransport reads node's stdout in chunks of this size (its `limit`).
READ_LIMIT = 32768


class DriverProcess:
    """What PipeTransport uses of asyncio's Process: stdin, stdout, communicate()."""

    def __init__(
        self,
        child: ChildProcess,
        stdin: asyncio.WriteTransport,
        stdout: asyncio.StreamReader,
        stdout_pipe: asyncio.ReadTransport,
    ) -> None:
        self._child = child
        self.stdin = stdin
        self.stdout = stdout
        self._stdout_pipe = stdout_pipe

    @property
    def pid(self) -> int:
        """The driver's process id (node)."""
        return self._child.pid

    async def communicate(self) -> tuple[None, None]:
        """Waits for node to end (its output was read already by the transport)."""
        try:
            await self._child.wait()
        finally:
            self._stdout_pipe.close()
        return None, None


async def attach(child: ChildProcess) -> DriverProcess:
    """Puts `child`'s stdin and stdout pipes on the running loop."""
    assert child.stdin is not None and child.stdout is not None
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=READ_LIMIT, loop=loop)
    stdout_pipe, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader, loop=loop), child.stdout
    )
    try:
        stdin, _ = await loop.connect_write_pipe(asyncio.Protocol, child.stdin)
    except BaseException:
        stdout_pipe.close()
        raise
    return DriverProcess(child, stdin, reader, stdout_pipe)


class ForklessPipeTransport(PipeTransport):
    """Playwright's pipe to node, with node started by `start_child`."""

    async def connect(self) -> None:
        """Starts node as PipeTransport.connect does, without the loop's spawn."""
        self._stopped_future = asyncio.Future()
        try:
            executable_path, entrypoint_path = compute_driver_executable()
            try:
                child = await start_child(
                    [executable_path, entrypoint_path, "run-driver"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=_get_stderr_fileno(),
                    env=get_driver_env(),
                    bufsize=0,
                )
            except OSError as error:
                raise node_launch_error(executable_path, error) from None
            try:
                self._proc = await attach(child)  # type: ignore[assignment]
            except BaseException:
                child.kill()
                await child.wait()
                raise
        except Exception as error:
            self.on_error_future.set_exception(error)
            raise
        self._output = self._proc.stdin


@contextlib.contextmanager
def forkless_driver() -> Iterator[None]:
    """Playwright clients made in the block start node by `ForklessPipeTransport`.

    PlaywrightClient makes its transport in the first step of async_playwright's
    start, before that awaits anything; the block restores Playwright's own class.
    """
    out_of_process.PipeTransport = ForklessPipeTransport  # type: ignore[attr-defined]
    try:
        yield
    finally:
        out_of_process.PipeTransport = PipeTransport  # type: ignore[attr-defined]
