"""A page's screen as JPEG frames: one CDP screencast on the current page, fanned out.

Chromium sends a frame when the page's pixels change (and one when the screencast
starts). Live viewers each get the newest frame, never a backlog: a slow viewer
skips frames instead of holding the others up. Recorders get every frame. The
screencast runs only while someone watches or records; a session follows its
current page with one, a task records its page with one.
"""

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from playwright.async_api import CDPSession, Page
from playwright.async_api import Error as PlaywrightError

log = logging.getLogger(__name__)

FrameSink = Callable[[bytes, float], None]
"""Takes one JPEG frame and the time (seconds) it was drawn."""


class Viewer:
    """One live viewer: the newest frame not yet taken."""

    def __init__(self) -> None:
        self._frames: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1)

    def offer(self, jpeg: bytes) -> None:
        """Keeps `jpeg` as the next frame, dropping one the viewer has not taken yet."""
        if self._frames.full():
            self._frames.get_nowait()
        self._frames.put_nowait(jpeg)

    async def next_frame(self) -> bytes:
        """Waits for the next frame."""
        return await self._frames.get()


class Screencast:
    """Follows one page at a time; feeds viewers and recorders."""

    def __init__(self, max_width: int, max_height: int, quality: int = 70) -> None:
        self._max_width = max_width
        self._max_height = max_height
        self._quality = quality
        self._viewers: set[Viewer] = set()
        self._recorders: list[FrameSink] = []
        self._page: Page | None = None
        self._cdp: CDPSession | None = None
        self._lock = asyncio.Lock()
        self._acks: set[asyncio.Task[None]] = set()
        self.last_frame: bytes | None = None

    @property
    def wanted(self) -> bool:
        """Whether anyone needs frames now."""
        return bool(self._viewers) or bool(self._recorders)

    async def record_to(self, recorder: FrameSink) -> None:
        """Sends every frame to `recorder` from now on, starting with the screen as it is."""
        self._recorders.append(recorder)
        # A restarted screencast sends the current screen at once: the recording's first frame.
        await self._restart()

    async def stop_recording_to(self, recorder: FrameSink) -> None:
        """Sends no more frames to `recorder`; the screencast stops when nobody needs it."""
        if recorder in self._recorders:
            self._recorders.remove(recorder)
        if not self.wanted:
            async with self._lock:
                await self._stop()

    async def watch(self) -> Viewer:
        """A new viewer, given the last frame at once when there is one."""
        viewer = Viewer()
        if self.last_frame is not None:
            viewer.offer(self.last_frame)
        self._viewers.add(viewer)
        await self._restart()
        return viewer

    async def unwatch(self, viewer: Viewer) -> None:
        """Forgets a viewer; the screencast stops when nobody needs it."""
        self._viewers.discard(viewer)
        if not self.wanted:
            async with self._lock:
                await self._stop()

    async def follow(self, page: Page) -> None:
        """Casts `page` from now on (the session's current page changed)."""
        if page is self._page:
            return
        self._page = page
        await self._restart()

    async def close(self) -> None:
        """Stops casting; viewers get no more frames."""
        self._viewers.clear()
        self._recorders.clear()
        async with self._lock:
            await self._stop()

    async def _restart(self) -> None:
        async with self._lock:
            await self._stop()
            page = self._page
            if page is None or page.is_closed() or not self.wanted:
                return
            try:
                cdp = await page.context.new_cdp_session(page)
                cdp.on("Page.screencastFrame", lambda params: self._on_frame(cdp, params))
                await cdp.send(
                    "Page.startScreencast",
                    {
                        "format": "jpeg",
                        "quality": self._quality,
                        "maxWidth": self._max_width,
                        "maxHeight": self._max_height,
                    },
                )
            except PlaywrightError as error:
                # The page closed under us; the session follows the next one.
                log.debug("could not start a screencast: %s", error)
                return
            self._cdp = cdp

    async def _stop(self) -> None:
        cdp, self._cdp = self._cdp, None
        if cdp is None:
            return
        with contextlib.suppress(PlaywrightError):
            await cdp.send("Page.stopScreencast")
            await cdp.detach()

    def _on_frame(self, cdp: CDPSession, params: dict[str, Any]) -> None:
        jpeg = base64.b64decode(params["data"])
        # When Chromium drew it (seconds since the epoch); its arrival when it does not say.
        timestamp = float(params.get("metadata", {}).get("timestamp") or time.time())
        self.last_frame = jpeg
        for viewer in self._viewers:
            viewer.offer(jpeg)
        for recorder in list(self._recorders):
            recorder(jpeg, timestamp)
        ack = asyncio.get_running_loop().create_task(self._ack(cdp, params["sessionId"]))
        self._acks.add(ack)
        ack.add_done_callback(self._acks.discard)

    async def _ack(self, cdp: CDPSession, screencast_session: int) -> None:
        # Chromium sends the next frame only once this one is acknowledged.
        with contextlib.suppress(PlaywrightError):
            await cdp.send("Page.screencastFrameAck", {"sessionId": screencast_session})
