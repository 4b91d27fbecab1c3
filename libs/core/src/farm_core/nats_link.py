"""A NATS connection made in the background, retried until it works, closable mid-connect.

A link given a `NatsPause` also fails fast: after one of its calls goes unanswered
it asks NATS nothing for a moment, as do the links that share that pause.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import APIError, ServiceUnavailableError

from farm_core.cancel import cancel_and_wait
from farm_core.nats_access import NatsAccess
from farm_core.queue import connect

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0

Prepared = TypeVar("Prepared")
Answer = TypeVar("Answer")


class NatsPaused(Exception):
    """A call not made: NATS is not connected, or did not answer a call moments ago."""


class NatsPause:
    """After a NATS call goes unanswered, the calls of the links that share this fail at once.

    A stalled nats-server (stopped, its disk full) keeps the connection and answers
    nothing, so each call would wait out its timeout, one after another. A caller
    with a deadline of its own (auth's edge check, which Envoy waits 2 s for) shares
    one pause between its links: each call waits at most `call_timeout_seconds`,
    the first that goes unanswered starts the pause, and for `pause_seconds` every
    call fails with NatsPaused for the caller to answer from what it holds.
    """

    def __init__(
        self,
        call_timeout_seconds: float,
        pause_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.call_timeout_seconds = call_timeout_seconds
        self._pause_seconds = pause_seconds
        self._clock = clock
        self._until = 0.0

    @property
    def active(self) -> bool:
        """Whether NATS is not to be asked now."""
        return self._clock() < self._until

    def begin(self) -> None:
        """Starts (or restarts) the pause."""
        self._until = self._clock() + self._pause_seconds


def unanswered(error: BaseException) -> bool:
    """Whether `error` says NATS did not answer (a timeout, no responders, no connection).

    JetStream's own answers (no such key, a wrong last sequence) are answers,
    except its 503: JetStream unavailable.
    """
    if isinstance(error, ServiceUnavailableError | TimeoutError):
        return True
    return isinstance(error, nats.errors.Error) and not isinstance(error, APIError)


class NatsLink:
    """One NATS connection for a background task (audit publisher, audit writer).

    `open` retries until NATS answers, so a part starts without NATS; `close`
    closes the connection, or cancels one still being made when the task stopped;
    `reconnected` is called each time the connection is back after an outage;
    `call` fails fast while `pause` holds.
    """

    def __init__(
        self,
        access: NatsAccess,
        name: str,
        reconnected: Callable[[], None] | None = None,
        pause: NatsPause | None = None,
    ) -> None:
        self._access = access
        self._name = name
        self._reconnected = reconnected
        self._pause = pause
        self._nc: Client | None = None
        self._connecting: asyncio.Future[Client] | None = None

    @property
    def is_connected(self) -> bool:
        """Whether the connection is up now."""
        return self._nc is not None and self._nc.is_connected

    @property
    def client(self) -> Client | None:
        """The connection once made (up, or reconnecting by itself); None before and after."""
        return self._nc

    @property
    def paused(self) -> bool:
        """Whether `call` fails at once now: not connected, or the pause holds."""
        return self._pause is not None and (self._pause.active or not self.is_connected)

    async def call(self, request: Callable[[], Awaitable[Answer]]) -> Answer:
        """What `request()` (a call on this connection) answers; fails fast with a pause.

        With a pause: NatsPaused at once while it holds or the connection is down;
        else the call waits at most the pause's call timeout, and one that goes
        unanswered starts the pause and raises as it failed.
        """
        pause = self._pause
        if pause is None:
            return await request()
        if not self.is_connected:
            raise NatsPaused("NATS is not connected")
        if pause.active:
            raise NatsPaused("NATS did not answer a call moments ago")
        try:
            return await asyncio.wait_for(request(), pause.call_timeout_seconds)
        except Exception as error:
            # Calls made together time out together: the first starts the pause.
            if unanswered(error) and not pause.active:
                pause.begin()
                log.warning(
                    "%s: NATS did not answer (%s); calls fail at once for a moment",
                    self._name,
                    str(error) or type(error).__name__,
                )
            raise

    def jetstream(self) -> JetStreamContext | None:
        """JetStream on the connection, None before it is made or after it closed."""
        return self._nc.jetstream() if self._nc is not None and not self._nc.is_closed else None

    async def open(self, prepare: Callable[[JetStreamContext], Awaitable[Prepared]]) -> Prepared:
        """Connects and runs `prepare` (streams, consumers) on JetStream, retrying both."""
        while True:
            try:
                # Shielded: close() ends a connect in progress, and closes the
                # connection of one that was made meanwhile.
                self._connecting = asyncio.ensure_future(
                    connect(self._access, self._name, self._reconnected)
                )
                self._nc = await asyncio.shield(self._connecting)
                return await prepare(self._nc.jetstream())
            except Exception as error:  # any failure means: try again later
                log.warning("%s: NATS not ready (%s); retrying", self._name, error)
                if self._nc is not None:
                    await self._nc.close()
                    self._nc = None
                await asyncio.sleep(RETRY_SECONDS)

    async def close(self) -> None:
        """Closes the connection, or cancels the connect in progress."""
        connecting, self._connecting = self._connecting, None
        if connecting is not None:
            # Not waited for: a connect cancelled mid-way closes its own socket
            # (farm_core.queue.connect), and against an absent NATS it never ends.
            await cancel_and_wait(connecting, f"the NATS connect of {self._name}")
            if not connecting.cancelled() and connecting.exception() is None:
                self._nc = connecting.result()
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()
        self._nc = None
