"""A service's start on NATS: connect and set up JetStream, trying again until a deadline.

On a busy cluster, while JetStream elects its leader, or while nats-server is
briefly paused or unreachable, a set-up request (a stream, consumer or bucket
looked up or made) times out or finds no responder. Such a request is tried again
after doubling waits, each failed try logged with its reason, until
FARM_NATS_START_TIMEOUT_SECONDS after the start began; then the start fails with
NatsStartTimeout, naming what it waited for. A refusal (a permissions violation,
JetStream not enabled for the account, a JetStream API error such as a stream
whose config differs) fails at once with NatsStartRefused: trying again would not
change it. A stream another service makes that is not there yet (an agent started
beside the scheduler) is waited for the same way, but looked up again at least
every AWAIT_MAKER_MAX_SECONDS, so the start goes on soon after it is made.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import nats.errors
from nats.aio.client import Client
from nats.js.errors import APIError, ServiceUnavailableError

from farm_core.backoff import doubling_delay
from farm_core.nats_access import NatsAccess
from farm_core.queue import StreamNotMade, connect
from farm_core.runtime import StartFailure

log = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 0.25
MAX_RETRY_SECONDS = 4.0
AWAIT_MAKER_MAX_SECONDS = 0.5
TIMEOUT_SETTING = "FARM_NATS_START_TIMEOUT_SECONDS"
# JetStream's "not enabled for account": a 503 that no wait cures.
_JETSTREAM_NOT_ENABLED = 10039
# nats-py's spelling of a server's permissions error (nats.aio.client.PERMISSIONS_ERR).
_PERMISSIONS_VIOLATION = "permissions violation"

Prepared = TypeVar("Prepared")

PASSING_ERRORS: tuple[type[Exception], ...] = (
    TimeoutError,  # nats.errors.TimeoutError is one too
    nats.errors.NoRespondersError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.ConnectionReconnectingError,
    ServiceUnavailableError,
    OSError,
    StreamNotMade,
)
"""Failures a later try may not meet: NATS slow, paused, reconnecting or electing a leader."""


class NatsStartTimeout(StartFailure):
    """NATS did not answer a start's connect or set-up within the start deadline."""


class NatsStartRefused(StartFailure):
    """NATS refused a set-up request: a configuration error, not worth another try."""


class NatsStart:
    """One service start's deadline on NATS, shared by its connect and every set-up request."""

    def __init__(self, service: str, timeout_seconds: float) -> None:
        self._service = service
        self._timeout = timeout_seconds
        self._deadline = time.monotonic() + timeout_seconds

    def _remaining(self) -> float:
        return max(self._deadline - time.monotonic(), 0.0)

    def _gave_up(self, waited_for: str) -> str:
        return f"{self._service} gave up after {self._timeout:g} s ({TIMEOUT_SETTING}) {waited_for}"

    async def connect(
        self, access: NatsAccess, name: str, reconnected: Callable[[], None] | None = None
    ) -> Client:
        """Connects as `farm_core.queue.connect` does, or fails once the deadline is up.

        A login NATS refuses fails at once: no later try would be let in.
        """
        refusal: asyncio.Future[Exception] = asyncio.get_running_loop().create_future()

        def login_refused(error: Exception) -> None:
            if not refusal.done():
                refusal.set_result(error)

        connecting = asyncio.ensure_future(connect(access, name, reconnected, login_refused))
        waiting: set[asyncio.Future[Any]] = {connecting, refusal}
        done, _ = await asyncio.wait(
            waiting, timeout=self._remaining(), return_when=asyncio.FIRST_COMPLETED
        )
        if connecting in done:
            return connecting.result()
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await connecting  # it closes the client it was connecting
        if refusal in done:
            who = f"NATS_USER={access.user!r}" if access.user else "no NATS_USER (anonymous)"
            raise NatsStartRefused(
                f"NATS at {access.shown()} refused the login of {who}: {refusal.result()}; "
                "check NATS_USER and NATS_PASSWORD"
            )
        raise NatsStartTimeout(
            self._gave_up(f"waiting for a connection to NATS at {access.shown()}")
        )

    async def set_up(
        self, nc: Client, what: str, request: Callable[[], Awaitable[Prepared]]
    ) -> Prepared:
        """Runs `request` (to `what`, e.g. "find the stream FARM_TASKS") on `nc` until it answers.

        A passing failure is tried again after a doubling wait while the deadline
        allows; a refusal goes up at once as NatsStartRefused.
        """
        failures = 0
        while True:
            errors_before = nc.last_error
            try:
                return await request()
            except PASSING_ERRORS as error:
                self._refuse_if_denied(nc, errors_before, what, error)
                failures += 1
                awaited = isinstance(error, StreamNotMade)
                longest = AWAIT_MAKER_MAX_SECONDS if awaited else MAX_RETRY_SECONDS
                delay = doubling_delay(FIRST_RETRY_SECONDS, longest, failures)
                if delay >= self._remaining():
                    raise NatsStartTimeout(
                        self._gave_up(f"waiting for JetStream to {what}: {describe(error)}")
                    ) from error
                level = logging.WARNING
                if awaited:
                    # Another service's start is expected to take a while: said once.
                    level = logging.INFO if failures == 1 else logging.DEBUG
                log.log(
                    level,
                    "JetStream did not %s (try %d: %s); trying again in %.2f s",
                    what,
                    failures,
                    describe(error),
                    delay,
                )
                await asyncio.sleep(delay)
            except APIError as error:
                raise NatsStartRefused(f"JetStream refused to {what}: {describe(error)}") from error

    def _refuse_if_denied(
        self, nc: Client, errors_before: Exception | None, what: str, error: Exception
    ) -> None:
        """Turns a failure NATS caused by a refusal into NatsStartRefused.

        A request NATS's permissions deny just goes unanswered (a timeout); the
        server's permissions error reaches the connection's last error instead.
        """
        latest = nc.last_error
        if latest is not errors_before and _PERMISSIONS_VIOLATION in str(latest).lower():
            raise NatsStartRefused(
                f"NATS refused to {what}: {latest}; check the permissions of this "
                "process's NATS user (NATS_USER)"
            ) from error
        if isinstance(error, APIError) and error.err_code == _JETSTREAM_NOT_ENABLED:
            raise NatsStartRefused(
                f"JetStream refused to {what}: {describe(error)}; enable JetStream for "
                "this account on the NATS server"
            ) from error


def describe(error: BaseException) -> str:
    """An error as a log line names it: its type, and its message when it has one."""
    if isinstance(error, APIError):
        return f"{type(error).__name__} {error.code or ''} {error.description or ''}".strip()
    message = str(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__
