"""Many NATS requests under way at once, a bounded number, each answer or error kept."""

import asyncio
from collections.abc import Awaitable, Sequence
from typing import TypeVar

Answer = TypeVar("Answer")

DEFAULT_IN_FLIGHT = 256
"""How many requests of a batch are under way at once: enough to keep one connection busy,
few enough to leave room for everyone else's requests in its pending buffer."""


async def gather_bounded(
    requests: Sequence[Awaitable[Answer]], in_flight: int = DEFAULT_IN_FLIGHT
) -> list[Answer | BaseException]:
    """Each of `requests`' answer, or the exception it raised, in order; `in_flight` at once."""
    slots = asyncio.Semaphore(in_flight)

    async def one(request: Awaitable[Answer]) -> Answer:
        async with slots:
            return await request

    return await asyncio.gather(*map(one, requests), return_exceptions=True)
