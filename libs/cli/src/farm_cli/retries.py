"""Calls a bulk command makes again: after a rate limit's wait, or a backoff when UNAVAILABLE.

The policy is the SDK's (browserfarm.calls: which failures are retried, the doubling
backoff that waits at least the farm's Retry-After); here it serves the CLI's
threads, which share one RateGate: once the farm rate-limits one call, every thread
waits out the Retry-After before its next call, instead of each spending refused
calls (each one an audit record) to learn the same thing. A command may be told of
each wait before it starts (`on_wait`), to say on stderr why it is not done yet.

Every wait (a Retry-After, a backoff) is on the gate, so a command that stops (Ctrl-C,
or an error that ends it) stops the gate and its threads end their waits at once:
Python joins a command's worker threads before it exits, and one sleeping out a
Retry-After of up to a minute held Ctrl-C's exit that long.
"""

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import grpc
from tenacity import RetryCallState, Retrying, retry_if_exception

from browserfarm.calls import RetryWait, retryable
from browserfarm.config import ClientOptions
from browserfarm.errors import FarmError, RateLimited, from_rpc_error

Reply = TypeVar("Reply")
WaitNotice = Callable[[FarmError, float], None]
"""Told of a wait before a call is made again: the failure waited out, and the seconds."""

# A rate-limited call is made again until it goes through: each wait is at least the
# Retry-After (1 s or more), so this many bound a call's wait at minutes, not forever.
RATE_LIMITED_ATTEMPTS = 200


class Stopped(Exception):
    """The command is stopping: its calls wait no more and are not made again."""


class RateGate:
    """Holds back every call of a command until the farm's rate limit lets them through.

    Used as a context manager, it stops on leaving the block, however it is left.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._clock = clock
        self._stopped = threading.Event()
        self._sleep = sleep or self._sleep_unless_stopped
        self._lock = threading.Lock()
        self._opens_at = 0.0

    def __enter__(self) -> "RateGate":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Ends every wait on the gate at once, and every later one, with Stopped."""
        self._stopped.set()

    def hold(self, seconds: float) -> None:
        """Keeps the gate shut for `seconds` from now (never opens it sooner)."""
        with self._lock:
            self._opens_at = max(self._opens_at, self._clock() + seconds)

    def wait(self) -> None:
        """Returns once the gate is open; Stopped if the gate stops first."""
        with self._lock:
            shut_for = self._opens_at - self._clock()
        if shut_for > 0:
            self.sleep(shut_for)
        elif self._stopped.is_set():
            raise Stopped

    def sleep(self, seconds: float) -> None:
        """Waits `seconds` (a backoff before a call is made again); Stopped if the gate stops."""
        self._sleep(seconds)
        if self._stopped.is_set():
            raise Stopped

    def _sleep_unless_stopped(self, seconds: float) -> None:
        self._stopped.wait(seconds)


class _Attempts:
    """Tenacity's stop: `most` calls in all, or RATE_LIMITED_ATTEMPTS while rate-limited."""

    def __init__(self, most: int) -> None:
        self._most = max(1, most)

    def __call__(self, state: RetryCallState) -> bool:
        outcome = state.outcome
        limited = outcome is not None and isinstance(outcome.exception(), RateLimited)
        return state.attempt_number >= (RATE_LIMITED_ATTEMPTS if limited else self._most)


def call_retrying(
    call: Callable[[], Reply],
    gate: RateGate,
    options: ClientOptions | None = None,
    *,
    idempotent: bool = True,
    on_wait: WaitNotice | None = None,
) -> Reply:
    """`call()` (one RPC), made again as the module says; its last error raised.

    A call that is not `idempotent` is made again only after a rate limit (the edge
    refused it, so it did nothing), not when UNAVAILABLE. `on_wait`, if given, is told
    of each wait before it. The error raised is the grpc.RpcError of the last call, as
    `call` raised it.
    """
    settings = options or ClientOptions()

    def attempt() -> Reply:
        gate.wait()
        try:
            return call()
        except grpc.RpcError as error:
            failure = from_rpc_error(error)
            if isinstance(failure, RateLimited):
                gate.hold(failure.retry_after)
            raise failure from error

    def before_wait(state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome is not None else None
        if on_wait is not None and state.next_action is not None and isinstance(failure, FarmError):
            on_wait(failure, state.next_action.sleep)

    retrying = Retrying(
        stop=_Attempts(settings.max_attempts),
        wait=RetryWait(settings.backoff_seconds, settings.max_backoff_seconds),
        retry=retry_if_exception(retryable(settings, idempotent=idempotent)),
        before_sleep=before_wait,
        sleep=gate.sleep,
        reraise=True,
    )
    try:
        return retrying(attempt)
    except FarmError as failure:
        cause = failure.__cause__
        raise cause if isinstance(cause, grpc.RpcError) else failure from None
