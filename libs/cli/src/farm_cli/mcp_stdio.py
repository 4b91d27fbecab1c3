"""The stdio MCP server of `farm mcp`: one process, one MCP connection, one farm session.

The session opens on the first tool call and is closed when the assistant closes
stdin (the farm's idle timeout ends it if this process dies first).
"""

import logging
import os
import sys
from importlib.metadata import version
from pathlib import Path

import anyio
import grpc

from browserfarm.grpc_transport import EDGE_CHANNEL_OPTIONS
from farm.sessions.v1 import sessions_pb2_grpc
from farm.storage.v1 import artifacts_pb2_grpc
from farm_cli.target import FarmTarget, api_key, farm_target
from farm_mcp_tools.browser import BrowserSettings, FarmBrowser, LateCloses
from farm_mcp_tools.farm import Credentials, FarmApi, FarmCallFailed
from farm_mcp_tools.runner import ToolContext, ToolLimits
from farm_mcp_tools.server import build_server

log = logging.getLogger(__name__)

# Closing the session when stdin ends: one call, bounded.
CLOSE_TIMEOUT = 30.0


class ProcessConnection:
    """The one connection of a stdio server: one browser, the user's key."""

    def __init__(self, browser: FarmBrowser, credentials: Credentials) -> None:
        self._browser = browser
        self._credentials = credentials

    def browser(self, ctx: ToolContext) -> FarmBrowser:
        """The process's browser, whatever the request."""
        return self._browser

    def credentials(self, ctx: ToolContext) -> Credentials:
        """The user's API key."""
        return self._credentials


def serve(*, tool_timeout: float, action_timeout: float, idle_timeout: int) -> None:
    """Serves MCP on stdin/stdout until stdin closes, then closes the farm session."""
    # stdout carries the protocol: every log line goes to stderr.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    key = api_key(os.environ, Path.cwd())
    target = farm_target(os.environ, Path.cwd())
    limits = ToolLimits(call_seconds=tool_timeout, action_ms=round(action_timeout * 1000))
    settings = BrowserSettings(idle_timeout_seconds=idle_timeout)
    anyio.run(_serve, target, key, limits, settings)


async def _serve(
    target: FarmTarget, key: str, limits: ToolLimits, settings: BrowserSettings
) -> None:
    options = EDGE_CHANNEL_OPTIONS
    channel: grpc.aio.Channel = (
        grpc.aio.secure_channel(target.address, target.credentials(), options=options)
        if target.secure
        else grpc.aio.insecure_channel(target.address, options=options)
    )
    farm = FarmApi(
        sessions_pb2_grpc.SessionServiceStub(channel),
        artifacts_pb2_grpc.ArtifactServiceStub(channel),
        public_url=target.url,
    )
    credentials = (("authorization", f"Bearer {key}"),)
    late_closes = LateCloses(CLOSE_TIMEOUT)
    browser = FarmBrowser(farm, settings, late_closes)
    server = build_server(ProcessConnection(browser, credentials), limits, version("farm-cli"))
    try:
        async with late_closes.running():
            try:
                await server.run_stdio_async()
            finally:
                with anyio.CancelScope(shield=True):
                    await _close(browser, credentials)
    finally:
        with anyio.CancelScope(shield=True):
            await channel.close()


async def _close(browser: FarmBrowser, credentials: Credentials) -> None:
    """Closes the farm session; a failure is logged (the farm's idle timeout ends it anyway)."""
    try:
        await browser.close(credentials, CLOSE_TIMEOUT)
    except FarmCallFailed as error:
        log.warning("could not close the browser's farm session: %s", error)
