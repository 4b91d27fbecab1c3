"""JetStream publishes sent back to back, their acknowledgements awaited later.

nats-py's `publish_async` waits for a slot among its in-flight publishes with
`asyncio.wait_for(..., wait_stall)`, which makes a task and yields to the event loop
on every call, even when slots are free; each yield let the client's flusher write
the one message buffered so far. Its acknowledgements cost more than the publishes:
each was parsed into a PubAck through `dataclasses.fields` (a tenth of a busy
scheduler's loop during batches of 1,000), and each publish read the OS's randomness
for its reply token. So `send` publishes with a reply subject of its own: a counter
under one inbox per connection, subscribed once, whose replies are parsed with one
`json.loads`; it never yields while fewer than IN_FLIGHT_LIMIT publishes await their
acknowledgements, so a group's messages leave in one write.
"""

import asyncio
import itertools
import json
import weakref
from collections.abc import Sequence

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import APIError, NoStreamResponseError, TooManyStalledMsgsError

IN_FLIGHT_LIMIT = 4000
"""Publishes of one connection awaiting their acknowledgement before a send waits (stalls)."""
_NO_RESPONDERS = "503"


class _Replies:
    """The acknowledgements of one connection's pipelined publishes, on its own inbox."""

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._prefix = f"{nc.new_inbox()}."
        self._waiting: dict[str, asyncio.Future[PubAck]] = {}
        self._tokens = itertools.count()
        self._freed = asyncio.Event()
        self._subscribed = False

    async def send(
        self, subject: str, payload: bytes, headers: dict[str, str], stall_seconds: float
    ) -> asyncio.Future[PubAck]:
        """Publishes with a reply subject of its own; the future of its acknowledgement."""
        if not self._subscribed:
            # Set first: the SUB is queued before this call yields, so ahead of any
            # publish a concurrent send makes meanwhile.
            self._subscribed = True
            await self._nc.subscribe(f"{self._prefix}*", cb=self._reply)
        if len(self._waiting) >= IN_FLIGHT_LIMIT:
            await self._slot(stall_seconds)
        token = str(next(self._tokens))
        ack: asyncio.Future[PubAck] = asyncio.get_running_loop().create_future()
        self._waiting[token] = ack
        ack.add_done_callback(lambda _: self._forget(token))
        await self._nc.publish(subject, payload, reply=self._prefix + token, headers=headers)
        return ack

    def _forget(self, token: str) -> None:
        self._waiting.pop(token, None)
        self._freed.set()

    async def _slot(self, stall_seconds: float) -> None:
        """Waits up to `stall_seconds` for fewer than IN_FLIGHT_LIMIT publishes in flight."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + stall_seconds
        while len(self._waiting) >= IN_FLIGHT_LIMIT:
            self._freed.clear()
            try:
                await asyncio.wait_for(self._freed.wait(), max(deadline - loop.time(), 0.0))
            except TimeoutError:
                raise TooManyStalledMsgsError from None

    async def _reply(self, msg: Msg) -> None:
        ack = self._waiting.get(msg.subject[len(self._prefix) :])
        if ack is None or ack.done():
            return
        if msg.headers and msg.headers.get("Status") == _NO_RESPONDERS:
            ack.set_exception(NoStreamResponseError())
            return
        try:
            reply = json.loads(msg.data)
            if "error" in reply:
                APIError.from_error(reply["error"])  # raises the error's own class
            ack.set_result(
                PubAck(stream=reply["stream"], seq=reply["seq"], duplicate=reply.get("duplicate"))
            )
        except (APIError, ValueError, KeyError, TypeError) as error:
            ack.set_exception(error)


_replies: weakref.WeakKeyDictionary[Client, _Replies] = weakref.WeakKeyDictionary()


async def send(
    js: JetStreamContext,
    subject: str,
    payload: bytes,
    headers: dict[str, str],
    stall_seconds: float,
) -> asyncio.Future[PubAck]:
    """Sends one publish on `js`'s connection; its acknowledgement's future.

    Waits up to `stall_seconds` for a slot only when IN_FLIGHT_LIMIT publishes of
    the connection await theirs (TooManyStalledMsgsError after); otherwise does not
    yield to the loop (but for the first send of a connection, which subscribes).
    """
    nc: Client = js._nc
    replies = _replies.get(nc)
    if replies is None:
        replies = _replies[nc] = _Replies(nc)
    return await replies.send(subject, payload, headers, stall_seconds)


async def confirmed(
    acks: Sequence[asyncio.Future[PubAck]], timeout_seconds: float
) -> set[asyncio.Future[PubAck]]:
    """Those of `acks` that JetStream confirmed within `timeout_seconds`; the rest are cancelled."""
    if not acks:
        return set()
    done, pending = await asyncio.wait(acks, timeout=timeout_seconds)
    for ack in pending:
        # Cancelling frees its slot for a later publish.
        ack.cancel()
    return {ack for ack in done if not ack.cancelled() and ack.exception() is None}
