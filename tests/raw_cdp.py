"""A raw CDP client of a session's browser, and what it hears of downloads.

Used through Envoy (e2e) and through an agent's own endpoint (integration). A download's
end is heard (`Browser.downloadProgress`), not looked for on disk a while.
"""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

ANSWER_SECONDS = 15.0
"""How long a command's answer or an event may take."""


class RawCdp:
    """One raw CDP socket to a session's browser: commands and their answers, events kept."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._last_id = 0
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Sends one command (on a page's `session`, if given) and returns its result."""
        self._last_id += 1
        command: dict[str, Any] = {"id": self._last_id, "method": method, "params": params}
        if session is not None:
            command["sessionId"] = session
        await self._socket.send_str(json.dumps(command))
        async with asyncio.timeout(ANSWER_SECONDS):
            while True:
                message = json.loads(await self._socket.receive_str())
                if message.get("id") == self._last_id:
                    assert "result" in message, message
                    return dict(message["result"])
                if "method" in message:
                    self.events.append(message)

    async def event(self, method: str, session: str | None = None) -> dict[str, Any]:
        """The first event `method` (of `session`) heard, waiting for it if need be."""
        async with asyncio.timeout(ANSWER_SECONDS):
            while True:
                for message in self.events:
                    if message["method"] == method and message.get("sessionId") == session:
                        self.events.remove(message)
                        return message
                message = json.loads(await self._socket.receive_str())
                if "method" in message:
                    self.events.append(message)

    async def hear_downloads(self) -> None:
        """Has this connection hear every context's downloads, changing none a test studies.

        A connection hears download events once it set a behavior with `eventsEnabled`:
        it sets `deny` in a context of its own, which nothing else uses.
        """
        own = (await self.call("Target.createBrowserContext"))["browserContextId"]
        await self.call(
            "Browser.setDownloadBehavior", behavior="deny", browserContextId=own, eventsEnabled=True
        )

    async def download_end(self) -> str:
        """How the next download ends (`canceled` when refused); needs hear_downloads first."""
        while True:
            event = await self.event("Browser.downloadProgress")
            if event["params"]["state"] != "inProgress":
                return str(event["params"]["state"])

    async def open_page(self, context: str, url: str) -> str:
        """Opens `url` in a new page of `context`, waits for its load; its CDP session."""
        target = await self.call("Target.createTarget", url="about:blank", browserContextId=context)
        attached = await self.call(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        session = str(attached["sessionId"])
        await self.call("Page.enable", session)
        await self.call("Page.navigate", session, url=url)
        await self.event("Page.loadEventFired", session)
        return session


@contextlib.asynccontextmanager
async def raw_cdp(url: str, key: str) -> AsyncIterator[RawCdp]:
    """A raw CDP socket to the session's browser, through Envoy, with `key`."""
    headers = {"authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=headers) as socket:
        yield RawCdp(socket)


def downloads_begun(home: Path) -> list[Path]:
    """Any session browser's downloads folder under `home`, and what it holds.

    Chromium makes the folder as it settles where a download it keeps goes; one it
    refuses makes none.
    """
    return [path for folder in home.rglob("Downloads") for path in [folder, *folder.iterdir()]]
