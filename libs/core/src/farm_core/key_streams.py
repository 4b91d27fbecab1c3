"""Long-lived streams opened with an API key, each ended when that key stops being valid.

A key is checked where a request enters (auth's check at the edge), so a stream that
stays open (an agent's CDP or live-frames socket, the scheduler's WatchTask, a RunTask
waiting for its task) would outlive its key. Each such stream is added here with the
identity that opened it, and ended (through the `EndStream` it gave, with a reason
naming the key) when:
- its key expires, or the old secret it was opened with reaches its grace end after a
  rotation: both known from the identity (farm_core.key_validity), so a timer ends it;
- its key is revoked, or its secrets change (a rotation after it opened): auth names
  either on the revoked keys' bucket (farm_core.key_revocations), which the process
  watches and hands to `revoked` and `secrets_changed`.
Notices are remembered for NOTICE_MEMORY_SECONDS, so a stream opened just after one
(its identity signed by an auth replica whose key cache had not heard yet, for at
most FARM_AUTH_KEY_CACHE_SECONDS) still ends.
"""

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from farm_core.cancel import cancel_and_wait
from farm_core.errors import Unauthenticated
from farm_core.identity import Identity
from farm_core.key_revocations import KEY_REVOKED_REASON
from farm_core.key_validity import KeySecrets, KeyValidity

log = logging.getLogger(__name__)

EndStream = Callable[[str], Awaitable[None]]
"""Ends one stream, saying why (the reason names the key)."""
Item = TypeVar("Item")
NOTICE_MEMORY_SECONDS = 300.0
"""How long a revoke or a change of secrets heard applies to streams that open later."""


@dataclass(eq=False)
class KeyStream:
    """One stream open under an API key, and until when it may stay open."""

    key_id: str
    validity: KeyValidity | None
    end: EndStream
    timer: asyncio.TimerHandle | None = None


class KeyStreams:
    """The streams open under API keys in this process; ends each when its key does."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._streams: defaultdict[str, set[KeyStream]] = defaultdict(set)
        # Notices heard lately, oldest first: (when heard, the key's secrets; None: revoked).
        self._heard: OrderedDict[tuple[str, bool], tuple[float, KeySecrets | None]] = OrderedDict()
        self._ending: set[asyncio.Task[None]] = set()

    def add(self, key_id: str, validity: KeyValidity | None, end: EndStream) -> KeyStream:
        """Adds a stream opened with API key `key_id` (no key: '', never ended here)."""
        stream = KeyStream(key_id, validity, end)
        if not key_id:
            return stream
        self._streams[key_id].add(stream)
        if (key_id, True) in self._heard:
            self._spawn_end(stream, KEY_REVOKED_REASON)
            return stream
        _, secrets = self._heard.get((key_id, False), (0.0, None))
        if secrets is not None and validity is not None:
            stream.validity = validity.under(secrets, self._clock())
        self._schedule(stream)
        return stream

    def discard(self, stream: KeyStream) -> None:
        """Forgets a stream that ended of itself."""
        if stream.timer is not None:
            stream.timer.cancel()
        streams = self._streams.get(stream.key_id)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del self._streams[stream.key_id]

    @contextlib.contextmanager
    def held(self, identity: Identity) -> Iterator["asyncio.Future[str]"]:
        """A stream of `identity`'s while inside: the future gets why it must end, if it must."""
        ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def end(reason: str) -> None:
            if not ended.done():
                ended.set_result(reason)

        stream = self.add(identity.key_id if identity.role is None else "", identity.validity, end)
        try:
            yield ended
        finally:
            self.discard(stream)
            ended.cancel()

    async def revoked(self, key_id: str) -> None:
        """Ends every stream of the revoked key `key_id`, at once."""
        self._remember((key_id, True), None)
        ended = list(self._streams.get(key_id, ()))
        # Side by side: each may wait a moment for its client's own close.
        await asyncio.gather(*(self._end(stream, KEY_REVOKED_REASON) for stream in ended))
        if ended:
            log.info("ended %d streams of revoked API key %s", len(ended), key_id)

    async def secrets_changed(self, secrets: KeySecrets) -> None:
        """Ends, now or at the old secret's grace end, the streams opened with another secret."""
        self._remember((secrets.key_id, False), secrets)
        now = self._clock()
        for stream in list(self._streams.get(secrets.key_id, ())):
            if stream.validity is not None:
                stream.validity = stream.validity.under(secrets, now)
                self._schedule(stream)

    async def close(self) -> None:
        """Stops every timer and waits for the ends under way."""
        for streams in self._streams.values():
            for stream in streams:
                if stream.timer is not None:
                    stream.timer.cancel()
        for task in list(self._ending):
            with contextlib.suppress(Exception):
                await task

    def _remember(self, heard: tuple[str, bool], secrets: KeySecrets | None) -> None:
        """Notes a notice (key id, whether a revoke) and forgets those heard too long ago."""
        now = self._clock()
        self._heard.pop(heard, None)
        self._heard[heard] = (now, secrets)
        while next(iter(self._heard.values()))[0] < now - NOTICE_MEMORY_SECONDS:
            self._heard.popitem(last=False)

    def _schedule(self, stream: KeyStream) -> None:
        if stream.timer is not None:
            stream.timer.cancel()
            stream.timer = None
        ending = stream.validity.ending() if stream.validity is not None else None
        if ending is None:
            return
        until, reason = ending
        delay = max(until - self._clock(), 0.0)
        loop = asyncio.get_running_loop()
        stream.timer = loop.call_later(delay, self._spawn_end, stream, reason)

    def _spawn_end(self, stream: KeyStream, reason: str) -> None:
        task = asyncio.get_running_loop().create_task(self._end(stream, reason))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    async def _end(self, stream: KeyStream, reason: str) -> None:
        if stream not in self._streams.get(stream.key_id, ()):
            return  # ended already
        self.discard(stream)
        try:
            await stream.end(reason.format(key_id=stream.key_id))
        except Exception:
            log.exception("ending a stream of API key %s failed", stream.key_id)


async def until_ended(
    items: AsyncIterator[Item], ended: "asyncio.Future[str]"
) -> AsyncIterator[Item]:
    """`items`, until `ended` says why they must stop: then Unauthenticated saying it."""
    while True:
        step: asyncio.Future[Item] = asyncio.ensure_future(anext(items))
        try:
            waited: set[asyncio.Future[Any]] = {step, ended}
            await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not step.done():
                await cancel_and_wait(step, "a stream's next item")
        if step.cancelled():
            raise Unauthenticated(ended.result())
        try:
            item = step.result()
        except StopAsyncIteration:
            return
        # An item and the end at once: the item goes first.
        yield item
