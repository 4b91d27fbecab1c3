"""Progress notifications while a tool call waits for the farm.

A client that asks for progress (a `progressToken` in the call's `_meta`) hears,
every few seconds, how long the call has waited and its time limit. MCP clients
time a request out on their own clock (the TypeScript SDK after 60 s, the tools'
own limit), and may restart that clock on each notification: without them a
call that waits for a free browser or a slow page would look dead. A client that
asks for none gets none.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
from mcp.server.mcpserver import Context

log = logging.getLogger(__name__)

# How long the end of a call waits for its notifier to stop (it stops at once).
STOP_SECONDS = 1.0


@contextlib.asynccontextmanager
async def progress_reported(
    ctx: Context[Any, Any], every_seconds: float, limit_seconds: float
) -> AsyncIterator[None]:
    """Within the block, notifies progress every `every_seconds`: seconds waited of the limit."""
    notifier = asyncio.create_task(_notify(ctx, every_seconds, limit_seconds))
    try:
        yield
    finally:
        notifier.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.wait({notifier}, timeout=STOP_SECONDS)


async def _notify(ctx: Context[Any, Any], every_seconds: float, limit_seconds: float) -> None:
    started = time.monotonic()
    while True:
        await asyncio.sleep(every_seconds)
        waited = time.monotonic() - started
        try:
            await ctx.report_progress(
                round(waited, 1),
                limit_seconds,
                f"waiting for the farm: {waited:.0f} s of the tool time limit of "
                f"{limit_seconds:g} s",
            )
        except Exception as error:
            # The client's connection may be gone: the call's own answer says what happened.
            log.debug("a progress notification was not sent: %s", error)
            return
