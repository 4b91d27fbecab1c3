"""Fresh PostgreSQL databases made ahead and dropped behind the tests, per test process.

Making a database (CREATE DATABASE) and dropping it cost a PostgreSQL test a few tenths
of a second each. A pool's thread keeps a few empty databases ready and drops the ones
handed back while the tests go on; each test still gets a new, empty database of its
own, never one another test used. Every database the pool made is gone once it closes.
"""

import asyncio
import atexit
import secrets
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import asyncpg

from tests.postgres import POSTGRES_URL

# Two ready: a test that takes one finds the next already made while it runs.
READY_AHEAD = 2
T = TypeVar("T")


class DatabasePool:
    """Empty databases on `server_url`'s server, made ahead and dropped in the background.

    Its thread (with its own event loop and two admin connections, one making and one
    dropping) starts at the first take; close() drops all it made and stops it.
    """

    def __init__(
        self, server_url: str = POSTGRES_URL, prefix: str = "farm_test_", ahead: int = READY_AHEAD
    ) -> None:
        self.server_url = server_url
        self.prefix = prefix
        self._ahead = ahead
        self._start_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # Every name made and not yet dropped (ready, handed out, or waiting to drop).
        self._made: set[str] = set()

    async def take(self) -> str:
        """A new, empty database's postgresql:// URL, for one caller only."""
        return await asyncio.wrap_future(self._submit(self._take()))

    def release(self, url: str) -> None:
        """Hands `url`'s database back, to be dropped (with its connections) in the background."""
        loop = self._running_loop()
        loop.call_soon_threadsafe(self._drops.put_nowait, url.rsplit("/", 1)[1])

    async def drained(self) -> None:
        """Returns once every database released so far is dropped."""
        self._running_loop()
        await asyncio.wrap_future(self._submit(self._drops.join()))

    def close(self) -> None:
        """Drops every database the pool made (ready, released or still out); stops its thread."""
        with self._start_lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shut_down(), loop).result()
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()

    def _submit(self, work: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(work, self._running_loop())

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._start_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="database-pool", daemon=True
                )
                thread.start()
                try:
                    asyncio.run_coroutine_threadsafe(self._open(), loop).result()
                except BaseException:
                    loop.call_soon_threadsafe(loop.stop)
                    thread.join()
                    loop.close()
                    raise
                self._loop, self._thread = loop, thread
                atexit.register(self.close)
            return self._loop

    async def _open(self) -> None:
        self._maker = await asyncpg.connect(self.server_url)
        self._dropper = await asyncpg.connect(self.server_url)
        # A made name, or the error making one raised: take() raises it in the test.
        self._ready: asyncio.Queue[str | Exception] = asyncio.Queue(maxsize=self._ahead)
        self._drops: asyncio.Queue[str] = asyncio.Queue()
        # Held while a CREATE DATABASE runs, so closing never cancels one halfway.
        self._making = asyncio.Lock()
        self._filler = asyncio.create_task(self._fill())
        self._drainer = asyncio.create_task(self._drain())

    async def _take(self) -> str:
        made = await self._ready.get()
        if isinstance(made, Exception):
            raise made
        return f"{self.server_url.rsplit('/', 1)[0]}/{made}"

    async def _fill(self) -> None:
        while True:
            name = f"{self.prefix}{secrets.token_hex(6)}"
            try:
                async with self._making:
                    self._made.add(name)
                    await self._maker.execute(f'CREATE DATABASE "{name}"')
            except Exception as error:
                await self._ready.put(error)
                await asyncio.sleep(0.1)
                continue
            await self._ready.put(name)

    async def _drain(self) -> None:
        while True:
            name = await self._drops.get()
            try:
                await self._drop(name)
            except Exception:
                pass  # Left in _made: close() tries again, and raises if it fails again.
            finally:
                self._drops.task_done()

    async def _drop(self, name: str) -> None:
        await self._dropper.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._made.discard(name)

    async def _shut_down(self) -> None:
        async with self._making:
            self._filler.cancel()
        await asyncio.gather(self._filler, return_exceptions=True)
        await self._drops.join()
        self._drainer.cancel()
        await asyncio.gather(self._drainer, return_exceptions=True)
        try:
            for name in sorted(self._made):
                await self._drop(name)
        finally:
            await self._maker.close(timeout=5)
            await self._dropper.close(timeout=5)


DATABASE_POOL = DatabasePool()
