"""One open session on this agent: its browser, egress listener, screencast, clients and clocks."""

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from playwright.async_api import Page

from farm.sessions.v1 import sessions_pb2
from farm_agent.browser.observers import ContextObserver
from farm_agent.egress.session import EgressSession
from farm_agent.media.recorder import ScreenRecorder
from farm_agent.media.screencast import Screencast
from farm_agent.sessions.bridge import CdpClient, close_client
from farm_agent.sessions.browser import SessionBrowser
from farm_agent.sessions.dialogs import SessionDialogs
from farm_agent.sessions.screencasts import SessionScreencasts
from farm_agent.sessions.setup import SessionSetup
from farm_agent.work.uploader import ArtifactOwner
from farm_core.sessions import CloseReason


@dataclass(eq=False)
class OpenSession:
    """A session whose browser runs here."""

    session_id: str
    tenant: str
    spec: sessions_pb2.SessionSpec
    browser: SessionBrowser
    egress: EgressSession
    screencast: Screencast
    # Monotonic time at which the session ends whatever it does.
    expires_at: float
    # The session's own folder (browser profile, recording frames), removed when it closes.
    folder: Path
    # The console messages and requests of the session's pages, for commands' `collect`.
    observer: ContextObserver
    # The screencasts its commands start and stop.
    screencasts: SessionScreencasts
    # How its pages are set up (device, viewport, PageSetup), as opened and as changed since.
    setup: SessionSetup
    # The dialog its page shows, waiting for a command's (or a CDP client's) answer.
    dialogs: SessionDialogs
    # What closes with the session: its browser, then its egress listener.
    resources: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    recorder: ScreenRecorder | None = None
    clock: Callable[[], float] = time.monotonic
    commands: int = 0
    last_activity: float = field(default=0.0)
    closing: bool = False
    # Its attached clients' sockets (CDP, live frames).
    clients: set[web.WebSocketResponse | CdpClient] = field(default_factory=set)
    # Small tasks of the session's (following a new page), cancelled when it closes.
    background: set[asyncio.Task[None]] = field(default_factory=set)
    # One command at a time: they share the current page.
    command_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # The scheduler's grant for the session (OpenSessionOrder.upload_grant), for uploads.
    grant: str = ""

    @property
    def owner(self) -> ArtifactOwner:
        """What the session's artifacts are stored under."""
        return ArtifactOwner(self.tenant, self.session_id, self.grant)

    def __post_init__(self) -> None:
        self.last_activity = self.clock()

    def touch(self) -> None:
        """Notes activity (a command, CDP traffic): the idle clock starts again."""
        self.last_activity = self.clock()

    def due_reason(self) -> CloseReason | None:
        """Why the session must close now, if it must: idle, too old, or its browser died."""
        now = self.clock()
        if not self.browser.alive:
            return CloseReason.BROWSER_CRASHED
        if now >= self.expires_at:
            return CloseReason.MAX_LIFETIME
        # A command that runs longer than the idle timeout (a long wait) is not idleness.
        running = self.command_lock.locked()
        if not running and now - self.last_activity >= self.spec.idle_timeout_seconds:
            return CloseReason.IDLE_TIMEOUT
        return None

    async def current_page(self) -> Page:
        """The page commands act on (a new one if the client closed them all); it is cast live."""
        page = await self.browser.page()
        await self.setup.cover(page)
        await self.screencast.follow(page)
        return page

    def in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Runs `work` as one of the session's small tasks, cancelled when it closes."""
        task = asyncio.get_running_loop().create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def end_clients(self, reason: CloseReason) -> None:
        """Ends every attached client's socket with a close frame that says why."""
        clients, self.clients = self.clients, set()
        for client in clients:
            with contextlib.suppress(ConnectionError):
                await close_client(client, f"session {self.session_id} closed: {reason.value}")
