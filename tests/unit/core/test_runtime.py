"""FARM_EVENT_LOOP picks the loop a service's main coroutine runs on."""

import asyncio

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
