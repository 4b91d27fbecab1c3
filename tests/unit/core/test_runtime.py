"""FARM_EVENT_LOOP picks the loop a service's main coroutine runs on; how its process ends."""

import asyncio
import subprocess
import sys
import textwrap

import pytest
import uvloop

from farm_core.runtime import EventLoop, run
from farm_core.settings import FarmSettings


async def loop_type_after_a_subprocess() -> type[asyncio.AbstractEventLoop]:
    """The running loop's class, once it has run a child process through pipes (as Playwright's)."""
    child = await asyncio.create_subprocess_exec(
        "cat", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await child.communicate(b"ping")
    assert out == b"ping"
    return type(asyncio.get_running_loop())


def test_uvloop_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FARM_EVENT_LOOP", raising=False)
    settings = FarmSettings()
    assert settings.event_loop is EventLoop.UVLOOP
    assert issubclass(run(loop_type_after_a_subprocess(), settings.event_loop), uvloop.Loop)


def test_asyncio_still_runs_on_the_standard_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FARM_EVENT_LOOP", "asyncio")
    settings = FarmSettings()
    assert settings.event_loop is EventLoop.ASYNCIO
    loop_type = run(loop_type_after_a_subprocess(), settings.event_loop)
    assert not issubclass(loop_type, uvloop.Loop)
    assert issubclass(loop_type, asyncio.BaseEventLoop)


def test_an_unknown_loop_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FARM_EVENT_LOOP", "trio")
    with pytest.raises(ValueError, match="uvloop"):
        FarmSettings()


# A process whose log records wait in a buffer until logging's exit handler flushes them.
PROCESS_WITH_EXIT_WORK = textwrap.dedent(
    """
    import atexit
    import logging
    import logging.handlers
    import sys

    from farm_core.runtime import run_process

    held = logging.handlers.MemoryHandler(100, target=logging.StreamHandler(sys.stdout))
    logging.getLogger().addHandler(held)
    atexit.register(print, "exit handler ran")

    async def main() -> int:
        logging.getLogger().warning("record held until exit")
        sys.stdout.write("served, output not yet flushed; ")
        return 0

    run_process(main(), "uvloop")
    """
)


def test_a_process_run_to_its_end_still_runs_exit_handlers_and_flushes_its_output() -> None:
    finished = subprocess.run(
        [sys.executable, "-c", PROCESS_WITH_EXIT_WORK],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.splitlines() == [
        "served, output not yet flushed; exit handler ran",
        "record held until exit",
    ]


def test_a_process_whose_main_fails_exits_with_its_traceback() -> None:
    failing = "from farm_core.runtime import run_process\n"
    failing += "async def main() -> None:\n    raise RuntimeError('cannot listen')\n"
    failing += "run_process(main(), 'asyncio')\n"
    finished = subprocess.run(
        [sys.executable, "-c", failing], capture_output=True, text=True, timeout=60, check=False
    )
    assert finished.returncode == 1
    assert "RuntimeError: cannot listen" in finished.stderr


def test_a_process_serves_with_the_heap_of_its_imports_frozen() -> None:
    serving = "import gc\nfrom farm_core.runtime import run_process\n"
    serving += "async def main() -> None:\n    print(gc.get_freeze_count() > 0)\n"
    serving += "run_process(main(), 'uvloop')\n"
    finished = subprocess.run(
        [sys.executable, "-c", serving], capture_output=True, text=True, timeout=60, check=False
    )
    assert finished.stdout == "True\n", finished.stderr
