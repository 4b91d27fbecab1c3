"""A TCP proxy a test can cut, mend and hold, to fail a real server's link as a network does."""

import asyncio
import contextlib
from collections.abc import Callable

from farm_core.free_ports import free_port


class CuttableLink:
    """A TCP proxy to a server on 127.0.0.1 that the test can cut and mend, as a network fails."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self._target_port = target_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()
        self._answering = asyncio.Event()
        self._answering.set()
        self._sent = bytearray()
        self._hold_from: bytes | None = None

    @property
    def url(self) -> str:
        """The proxy's address as a NATS URL."""
        return f"nats://127.0.0.1:{self.port}"

    async def mend(self) -> None:
        """Accepts connections again."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    def times_sent(self, token: bytes) -> int:
        """How often `token` occurs in what the clients sent through the link so far."""
        return self._sent.count(token)

    def hold_answers(self) -> None:
        """Holds back what the server sends (as nats-server's acks) until `release_answers`."""
        self._answering.clear()

    def hold_answers_from(self, token: bytes) -> None:
        """Holds back what the server sends from the moment a client sends `token` on.

        The hold starts before the server has the request, so not even its answer to it
        gets through, however quickly the server answers.
        """
        self._hold_from = token

    def release_answers(self) -> None:
        """Passes on what the server sent meanwhile, and all after it."""
        self._answering.set()

    async def cut(self) -> None:
        """Refuses new connections and drops the open ones."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self._target_port
        )
        self._writers.update({writer, upstream_writer})
        pipes = {
            asyncio.create_task(self._pipe(reader, upstream_writer, sent=self._note_sent)),
            asyncio.create_task(self._pipe(upstream_reader, writer, self._answering)),
        }
        self._pipes.update(pipes)
        await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        for pipe in pipes:
            pipe.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
        self._pipes.difference_update(pipes)
        for each in (writer, upstream_writer):
            self._writers.discard(each)
            each.close()

    def _note_sent(self, data: bytes) -> None:
        self._sent += data
        if self._hold_from is not None and self._hold_from in self._sent:
            self._hold_from = None
            self._answering.clear()

    @staticmethod
    async def _pipe(
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        flowing: asyncio.Event | None = None,
        sent: Callable[[bytes], None] | None = None,
    ) -> None:
        # uvloop raises RuntimeError on a write to a transport `cut` has just closed.
        with contextlib.suppress(ConnectionError, RuntimeError):
            while data := await reader.read(65536):
                if flowing is not None:
                    await flowing.wait()
                if sent is not None:
                    sent(data)
                writer.write(data)
                await writer.drain()
