"""A callback receiver for tests: an aiohttp server on 127.0.0.1 in a thread of its own.

It answers each delivery with the next status of its plan (the last one repeats;
a 3xx with the `location` it is given),
keeps every request, and checks each signature with the secret it is given, as a
user's receiver would (farm_core.webhook_signature.verify).
"""

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from aiohttp import web

from farm_core.webhook_signature import (
    EVENT_ID_HEADER,
    EVENT_SIGNATURE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify,
    verify_event,
)


@dataclass(frozen=True)
class Received:
    """One delivery: its headers and raw body, and the status it was answered with."""

    headers: dict[str, str]
    body: bytes
    answered: int

    def signed_by(self, secret: str) -> bool:
        """Whether its Farm-Signature is valid for `secret` now (in the replay window)."""
        return verify(
            secret,
            self.headers.get(SIGNATURE_HEADER, ""),
            self.headers.get(TIMESTAMP_HEADER, ""),
            self.body,
            time.time(),
        )

    def event_signed_by(self, secret: str) -> bool:
        """Whether its Farm-Event-Signature signs its Farm-Event-Id, timestamp and body."""
        return verify_event(
            secret,
            self.headers.get(EVENT_SIGNATURE_HEADER, ""),
            self.headers.get(EVENT_ID_HEADER, ""),
            self.headers.get(TIMESTAMP_HEADER, ""),
            self.body,
            time.time(),
        )


class Receiver:
    """Answers POST / with `statuses` in turn; `url` is where it listens."""

    def __init__(self, *statuses: int, location: str = "") -> None:
        self._statuses = list(statuses) or [200]
        # Sent as the Location of a 3xx answer, when given.
        self._location = location
        self.received: list[Received] = []
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        index = min(len(self.received), len(self._statuses) - 1)
        status = self._statuses[index]
        self.received.append(Received(dict(request.headers), body, status))
        headers = {"Location": self._location} if self._location and status < 400 else {}
        return web.Response(
            status=status, text="ok" if status < 300 else "not now", headers=headers
        )

    @contextmanager
    def running(self) -> Iterator["Receiver"]:
        """Serves in a background thread until the block ends."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        stop: asyncio.Future[None] | None = None

        async def serve() -> None:
            nonlocal stop
            app = web.Application()
            app.router.add_post("/{tail:.*}", self._handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            self.url = f"http://127.0.0.1:{port}/hook"
            stop = loop.create_future()
            ready.set()
            await stop
            await runner.cleanup()

        thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
        thread.start()
        if not ready.wait(10):
            raise RuntimeError("the callback receiver did not start")
        try:
            yield self
        finally:
            assert stop is not None
            loop.call_soon_threadsafe(stop.set_result, None)
            thread.join(10)
            loop.close()
