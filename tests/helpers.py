"""Helpers for tests: bounded waiting for a condition, in async tests and in blocking ones.

Every test that waits for something to happen uses one of these two, never a loop of
its own: `assert_eventually` in a coroutine, `eventually` in a plain function.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

import pytest

Found = TypeVar("Found")

Message = str | Callable[[], str]
"""What a failed wait says: a text, or a function that describes the state it ended in."""


def _fail(message: Message, within: float) -> NoReturn:
    text = message() if callable(message) else message
    pytest.fail(f"{text} within {within} s")


async def assert_eventually(
    check: Callable[[], Awaitable[object]] | Callable[[], object],
    *,
    within: float = 10.0,
    interval: float = 0.05,
    message: Message = "condition not met",
) -> None:
    """Awaits until `check()` is true; fails the test after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            _fail(message, within)
        await asyncio.sleep(interval)


def eventually(
    check: Callable[[], Found | None],
    *,
    within: float = 10.0,
    interval: float = 0.05,
    message: Message = "condition not met",
) -> Found:
    """Calls `check()` until it returns something true, and returns that; blocks the thread.

    Fails the test after `within` seconds.
    """
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            _fail(message, within)
        time.sleep(interval)
