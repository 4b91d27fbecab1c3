"""Session browsers started ahead of time, so that opening a session does not wait for Chromium.

Starting Chromium and connecting Playwright to it takes most of a second; an agent
keeps `session_spare_browsers` of them ready (with the default screen, each with
its egress listener), hands one to the next session that wants that screen, and
starts another in the background; after `session_spare_keep_seconds` without a
session the spares close, until the next session asks again.
"""

import asyncio
import contextlib
import logging
import secrets
import shutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.pool import BrowserPool
from farm_agent.egress.session import EgressSession
from farm_agent.errors import TaskFailure
from farm_agent.sessions.browser import LaunchOptions, SessionBrowser
from farm_agent.settings import AgentSettings
from farm_core.free_ports import free_port
from farm_core.task_defaults import DEFAULT_VIEWPORT
from farm_core.task_errors import ErrorCode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Screen:
    """What a session's browser is started with: its window, user agent and scale."""

    width: int = DEFAULT_VIEWPORT.width
    height: int = DEFAULT_VIEWPORT.height
    user_agent: str = ""
    # 0: Chromium's own.
    scale: float = 0.0


DEFAULT_SCREEN = Screen()


def screen_for(
    device: str, viewport: tasks_pb2.Viewport, devices: Mapping[str, Mapping[str, Any]]
) -> Screen:
    """The screen of a session with `device` (a Playwright device name) and `viewport`."""
    screen = DEFAULT_SCREEN
    if device:
        descriptor = devices.get(device)
        if descriptor is None:
            raise TaskFailure(
                ErrorCode.INVALID_DEVICE,
                f"device: {device!r} is not a device Playwright knows, e.g. 'iPhone 13'",
            )
        screen = Screen(
            width=int(descriptor["viewport"]["width"]),
            height=int(descriptor["viewport"]["height"]),
            user_agent=str(descriptor.get("user_agent", "")),
            scale=float(descriptor.get("device_scale_factor", 0.0)),
        )
    if viewport.width and viewport.height:
        screen = replace(screen, width=viewport.width, height=viewport.height)
    return screen


@dataclass(eq=False)
class WarmBrowser:
    """A started session browser with its egress listener, not yet any session's."""

    browser: SessionBrowser
    egress: EgressSession
    # Closes the browser, then the egress listener.
    resources: contextlib.AsyncExitStack
    # The session's folder: the browser's profile, and a recording's frames.
    folder: Path


async def start_browser(
    pool: BrowserPool, settings: AgentSettings, screen: Screen, folder: Path
) -> WarmBrowser:
    """Starts a session browser in `folder`, its requests through an egress listener of its own."""
    stack = contextlib.AsyncExitStack()
    egress = await stack.enter_async_context(pool.egress.session(f"session browser {folder.name}"))
    # The driver is not restarted under the browser (it connects through it).
    playwright = await pool.driver.hold()
    stack.callback(pool.driver.let_go)
    # Pages of any browser here, or of another agent on this host, must not reach this
    # one's DevTools port, whatever FARM_AGENT_ALLOW opens (it is on loopback): guarded
    # before the browser listens on it, until the browser has ended.
    debug_port = free_port()
    pool.egress.guard_port(debug_port)
    stack.callback(pool.egress.release_port, debug_port)
    try:
        browser = await SessionBrowser.launch(
            playwright,
            LaunchOptions(
                chromium_path=settings.chromium_path,
                folder=folder / "browser",
                proxy_arguments=tuple(pool.egress.launch_arguments(egress)),
                temp_dirs=pool.temp_dirs,
                window_width=screen.width,
                window_height=screen.height,
                user_agent=screen.user_agent,
                extra_arguments=(
                    (f"--force-device-scale-factor={screen.scale}",) if screen.scale else ()
                ),
                close_timeout_seconds=settings.close_timeout_seconds,
                debug_port=debug_port,
            ),
        )
    except BaseException:
        await stack.aclose()
        await asyncio.to_thread(shutil.rmtree, folder, True)
        raise
    stack.push_async_callback(browser.close)
    return WarmBrowser(browser, egress, stack, folder)


class SpareBrowsers:
    """Keeps `count` browsers with the default screen ready while sessions are asked for.

    Each spare holds a Chromium (about 200 MiB) while it waits, so spares are kept only
    for `keep_seconds` after the last demand (the agent's start, or a session taken):
    an agent that serves no sessions gives their memory back. 0 keeps them always.
    """

    def __init__(
        self,
        start: Callable[[Path], Awaitable[WarmBrowser]],
        root: Path,
        count: int,
        keep_seconds: float = 0.0,
    ):
        self._start = start
        self._root = root
        self._count = count
        self._keep_seconds = keep_seconds
        self._ready: list[WarmBrowser] = []
        self._starting: set[asyncio.Task[None]] = set()
        self._retiring: set[asyncio.Task[None]] = set()
        self._retire_timer: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def ready(self) -> int:
        """How many spares are ready now."""
        return len(self._ready)

    def fill(self) -> None:
        """Starts browsers in the background until `count` are ready or starting.

        A demand: the spares are kept `keep_seconds` from now.
        """
        if self._closed:
            return
        while len(self._ready) + len(self._starting) < self._count:
            task = asyncio.get_running_loop().create_task(self._start_one())
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)
        self._keep_from_now()

    async def take(self) -> WarmBrowser | None:
        """A ready browser (another one is started in its place); None when none is ready.

        With none ready but some starting, it waits for those: a spare half started
        is ready sooner than a browser started now, which would also share the CPU
        with it (sessions opened back to back waited about a second for their own).
        """
        starting = set(self._starting)
        while not self._ready and starting:
            _, starting = await asyncio.wait(starting, return_when=asyncio.FIRST_COMPLETED)
        while self._ready:
            warm = self._ready.pop(0)
            self.fill()
            if warm.browser.alive:
                return warm
            await _discard(warm)
        self.fill()
        return None

    async def close(self) -> None:
        """Stops the browsers being started and closes the ready ones."""
        self._closed = True
        if self._retire_timer is not None:
            self._retire_timer.cancel()
        if self._retiring:
            await asyncio.wait(set(self._retiring))
        await self._end_all()

    def _keep_from_now(self) -> None:
        if self._keep_seconds <= 0:
            return
        if self._retire_timer is not None:
            self._retire_timer.cancel()
        self._retire_timer = asyncio.get_running_loop().call_later(self._keep_seconds, self._retire)

    def _retire(self) -> None:
        """No session asked for `keep_seconds`: the spares go until the next demand."""
        if self._closed:
            return
        task = asyncio.get_running_loop().create_task(self._end_all())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _end_all(self) -> None:
        for task in list(self._starting):
            task.cancel()
        if self._starting:
            await asyncio.wait(set(self._starting))
        ready, self._ready = self._ready, []
        for warm in ready:
            await _discard(warm)

    async def _start_one(self) -> None:
        try:
            warm = await self._start(self._root / f"spare-{secrets.token_hex(6)}")
        except Exception as error:
            log.warning("a spare session browser did not start: %s", error)
            return
        if self._closed:
            await _discard(warm)
            return
        self._ready.append(warm)


async def _discard(warm: WarmBrowser) -> None:
    await warm.resources.aclose()
    await asyncio.to_thread(shutil.rmtree, warm.folder, True)
