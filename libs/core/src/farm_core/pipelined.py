"""JetStream publishes sent back to back, their acknowledgements awaited later.

nats-py's `publish_async` waits for a slot among its in-flight publishes with
`asyncio.wait_for(..., wait_stall)`, which makes a task and yields to the event loop
on every call, even when slots are free; each yield let the client's flusher write
the one message buffered so far. Its acknowledgements cost more than the publishes:
each was parsed into a PubAck through `dataclasses.fields` (a tenth of a busy
scheduler's loop during batches of 1,000), and each publish read the OS's randomness
for its reply token. So `send_many` publishes with a reply subject of its own: a
counter under one inbox per connection, subscribed once, whose replies are parsed
with one regex match (or `json.loads`); it never yields while fewer than IN_FLIGHT_LIMIT publishes
await their acknowledgements, so a group's messages leave in one write.

Two parts lean on nats-py's internals (2.16, pinned in uv.lock), both here and
checked by tests/integration/core/test_pipelined.py against a real nats-server:

- Sending: nats-py's `publish` builds a header block, a command and a flush check
  per message (a sixth of a busy scheduler's loop during batches). `_command` and
  `_write` build the group's HPUB commands here and hands them to the client's pending buffer
  (`_send_command`) and flusher (`_flush_pending`) at once, with `publish`'s checks:
  a closed or draining connection, the buffer's limit while reconnecting, the
  server's maximum payload.
- Replies: a subscription with a callback gets each message through a queue read by
  a task of its own (a put, a get, a coroutine per reply: another eighth of the
  loop). The replies' subscription has no callback; its `_pending_queue`, into
  which the client's reader puts each message (`put_nowait`), is replaced by
  `_Direct`, which resolves the waiting future right there.
"""

import asyncio
import itertools
import json
import re
import weakref
from collections.abc import Callable, Iterable, Sequence

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import (
    BadHeaderError,
    BadSubjectError,
    ConnectionClosedError,
    ConnectionDrainingError,
    MaxPayloadError,
    OutboundBufferLimitError,
)
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import APIError, NoStreamResponseError, TooManyStalledMsgsError

IN_FLIGHT_LIMIT = 4000
"""Publishes of one connection awaiting their acknowledgement before a send waits (stalls)."""
_NO_RESPONDERS = "503"
# The acknowledgement nats-server writes for a newly stored message, read in a quarter
# of json.loads's time; any other reply (a duplicate, an error, a domain) goes to it.
_PLAIN_ACK = re.compile(rb'\{"stream":"([^"\\]+)","seq":(\d+)\}')
Outgoing = tuple[str, bytes, dict[str, str]]
"""A message to send: its subject, payload and headers."""
# As nats-py checks them: no whitespace in a subject (CR/LF would inject commands),
# header names of token characters, values without CR/LF.
_BAD_SUBJECT = re.compile(r"\s")
_HEADER_KEY = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Those checked already: a farm's subjects and header names are few.
_GOOD_SUBJECTS_KEPT = 4096
_good_subjects: set[str] = set()
_good_keys: set[str] = set()


class _Direct(asyncio.Queue[Msg]):
    """A subscription's pending queue that hands each message on as the client reads it."""

    def __init__(self, sub: Subscription, handle: Callable[[Msg], None]) -> None:
        super().__init__()
        self._sub = sub
        self._handle = handle

    def put_nowait(self, item: Msg) -> None:
        # The client counted the message's bytes as pending; none stay so.
        self._sub._pending_size -= len(item.data)
        self._handle(item)


def _command(subject: str, reply: str, headers: dict[str, str], payload: bytes) -> list[bytes]:
    """The PUB or HPUB command of one message in parts, as nats-py's `publish` writes it."""
    if subject not in _good_subjects:
        if not subject or _BAD_SUBJECT.search(subject):
            raise BadSubjectError
        if len(_good_subjects) >= _GOOD_SUBJECTS_KEPT:
            _good_subjects.clear()
        _good_subjects.add(subject)
    if not headers:
        return [f"PUB {subject} {reply} {len(payload)}\r\n".encode(), payload, b"\r\n"]
    lines = []
    for key, value in headers.items():
        if key not in _good_keys:
            if not _HEADER_KEY.fullmatch(key):
                raise BadHeaderError(key)
            _good_keys.add(key)
        if "\r" in value or "\n" in value:
            raise BadHeaderError(key)
        lines.append(f"{key}: {value}\r\n")
    block = f"NATS/1.0\r\n{''.join(lines)}\r\n"
    if block.isascii():
        size = len(block)
        head = f"HPUB {subject} {reply} {size} {size + len(payload)}\r\n{block}".encode()
    else:
        encoded = block.encode()
        size = len(encoded)
        head = f"HPUB {subject} {reply} {size} {size + len(payload)}\r\n".encode() + encoded
    return [head, payload, b"\r\n"]


async def _write(nc: Client, commands: list[bytes], messages: int, payload_bytes: int) -> None:
    """Hands `commands` to the client's pending buffer and flusher, as `publish` does."""
    if not commands:
        return
    if nc.is_closed:
        raise ConnectionClosedError
    if nc.is_draining_pubs:
        raise ConnectionDrainingError
    data = b"".join(commands)
    if not nc.is_connected and (
        nc._max_pending_size <= 0 or len(data) + nc._pending_data_size > nc._max_pending_size
    ):
        raise OutboundBufferLimitError
    nc.stats["out_msgs"] += messages
    nc.stats["out_bytes"] += payload_bytes
    await nc._send_command(data)
    if nc._flush_queue is not None and nc._flush_queue.empty():
        await nc._flush_pending()


class _Replies:
    """The acknowledgements of one connection's pipelined publishes, on its own inbox."""

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._prefix = f"{nc.new_inbox()}."
        self._waiting: dict[str, asyncio.Future[PubAck]] = {}
        self._tokens = itertools.count()
        self._freed = asyncio.Event()
        self._subscribed = False

    async def _subscribe(self) -> None:
        # Set first: the SUB is queued before this call yields, so ahead of any
        # publish a concurrent send makes meanwhile.
        self._subscribed = True
        try:
            sub = await self._nc.subscribe(f"{self._prefix}*")
        except BaseException:
            # Without the subscription no acknowledgement arrives: the next send tries again.
            self._subscribed = False
            raise
        early, sub._pending_queue = sub._pending_queue, _Direct(sub, self._reply)
        while not early.empty():  # read while subscribe() yielded
            self._reply(early.get_nowait())

    async def send_many(
        self, messages: Iterable[Outgoing], stall_seconds: float, acks: list[asyncio.Future[PubAck]]
    ) -> None:
        """Sends `messages`, appending each one's acknowledgement future to `acks`."""
        if not self._subscribed:
            await self._subscribe()
        loop = asyncio.get_running_loop()
        max_payload = self._nc.max_payload
        commands: list[bytes] = []
        sent: list[asyncio.Future[PubAck]] = []
        payload_bytes = 0
        try:
            for subject, payload, headers in messages:
                if len(self._waiting) >= IN_FLIGHT_LIMIT:
                    await _write(self._nc, commands, len(sent), payload_bytes)
                    acks.extend(sent)
                    commands, sent, payload_bytes = [], [], 0
                    await self._slot(stall_seconds)
                token = str(next(self._tokens))
                try:
                    if len(payload) > max_payload:
                        raise MaxPayloadError
                    commands += _command(subject, self._prefix + token, headers, payload)
                except (MaxPayloadError, BadSubjectError, BadHeaderError):
                    # Those before it leave, as they would have one by one.
                    await _write(self._nc, commands, len(sent), payload_bytes)
                    acks.extend(sent)
                    sent = []
                    raise
                payload_bytes += len(payload)
                ack: asyncio.Future[PubAck] = loop.create_future()
                self._waiting[token] = ack
                sent.append(ack)
            await _write(self._nc, commands, len(sent), payload_bytes)
        except BaseException:
            for ack in sent:  # made, never handed to the client
                ack.cancel()
            raise
        acks.extend(sent)

    def wake(self) -> None:
        """Lets a send that waits for a slot look again: futures were cancelled."""
        self._freed.set()

    async def _slot(self, stall_seconds: float) -> None:
        """Waits up to `stall_seconds` for fewer than IN_FLIGHT_LIMIT publishes in flight.

        A reply frees its publish's slot as it comes; a cancelled future's slot is
        taken back here, when the limit is reached (no callback per future).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + stall_seconds
        while len(self._waiting) >= IN_FLIGHT_LIMIT:
            self._waiting = {token: ack for token, ack in self._waiting.items() if not ack.done()}
            if len(self._waiting) < IN_FLIGHT_LIMIT:
                return
            self._freed.clear()
            try:
                await asyncio.wait_for(self._freed.wait(), max(deadline - loop.time(), 0.0))
            except TimeoutError:
                raise TooManyStalledMsgsError from None

    def _reply(self, msg: Msg) -> None:
        ack = self._waiting.pop(msg.subject[len(self._prefix) :], None)
        if ack is None or ack.done():
            return
        self._freed.set()
        if msg.headers and msg.headers.get("Status") == _NO_RESPONDERS:
            ack.set_exception(NoStreamResponseError())
            return
        plain = _PLAIN_ACK.fullmatch(msg.data)
        if plain is not None:
            ack.set_result(PubAck(stream=plain[1].decode(), seq=int(plain[2])))
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


def _of(js: JetStreamContext) -> _Replies:
    nc: Client = js._nc
    replies = _replies.get(nc)
    if replies is None:
        replies = _replies[nc] = _Replies(nc)
    return replies


async def send_many(
    js: JetStreamContext,
    messages: Iterable[Outgoing],
    stall_seconds: float,
    acks: list[asyncio.Future[PubAck]],
) -> None:
    """Sends `messages` on `js`'s connection, in one write while slots are free.

    Appends the future of each message's acknowledgement to `acks` once the message
    is handed to the client; when an error ends the sending (the connection closed,
    the buffer full while reconnecting, TooManyStalledMsgsError after `stall_seconds`
    waiting while IN_FLIGHT_LIMIT publishes await theirs), `acks` holds those of
    the messages sent before. Does not yield to the loop but to wait for a slot
    (and on a connection's first send, which subscribes).
    """
    await _of(js).send_many(messages, stall_seconds, acks)


async def send(
    js: JetStreamContext,
    subject: str,
    payload: bytes,
    headers: dict[str, str],
    stall_seconds: float,
) -> asyncio.Future[PubAck]:
    """Sends one publish on `js`'s connection; its acknowledgement's future (see send_many)."""
    acks: list[asyncio.Future[PubAck]] = []
    await _of(js).send_many([(subject, payload, headers)], stall_seconds, acks)
    return acks[0]


async def confirmed(
    acks: Sequence[asyncio.Future[PubAck]], timeout_seconds: float
) -> set[asyncio.Future[PubAck]]:
    """Those of `acks` that JetStream confirmed within `timeout_seconds`; the rest are cancelled."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_seconds
    # One wait per ack still pending when its turn comes, not a callback on each:
    # acknowledgements come in bursts, most are in by then.
    for ack in acks:
        if not ack.done():
            await asyncio.wait((ack,), timeout=max(deadline - loop.time(), 0.0))
            if not ack.done():
                break
    pending = [ack for ack in acks if not ack.done()]
    for ack in pending:
        ack.cancel()
    if pending:
        for replies in list(_replies.values()):
            replies.wake()  # their slots are free for later publishes
    return {ack for ack in acks if not ack.cancelled() and ack.exception() is None}
