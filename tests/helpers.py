"""Helpers for tests: bounded waiting for a condition."""

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest


async def assert_eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool],
    *,
    within: float = 10.0,
    interval: float = 0.05,
    message: str = "condition not met",
) -> None:
    """Awaits until `check()` is true; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{message} within {within} s")
        await asyncio.sleep(interval)
