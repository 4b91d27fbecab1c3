"""MCP connections to a test farm (`farm mcp` over stdio, /mcp through Envoy) and their calls."""

import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import TextContent

from farm_cli.launcher.farm import LocalFarm

SCOPES = ("sessions", "artifacts.read", "script")
"""What a key needs for every tool."""

Connect = Callable[[str], AbstractAsyncContextManager[Client]]
"""Opens one MCP connection with a key (tests/e2e/conftest.py's connect and over_http)."""


def texts(result: Any) -> str:
    """The text blocks of a tool's result, one a line."""
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


async def call(client: Client, tool: str, **arguments: Any) -> str:
    """Calls `tool` and returns its text; fails the test on a tool error."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, f"{tool} failed: {texts(result)}"
    return texts(result)


def stdio_connection(farm: LocalFarm, key: str) -> Client:
    """`farm mcp` spawned as an assistant would, reaching Envoy with `key`."""
    environment = {**os.environ, "FARM_URL": farm.envoy_url, "FARM_API_KEY": key}
    command = StdioServerParameters(
        command=sys.executable,
        args=["-m", "farm_cli.main", "mcp", "--action-timeout", "2"],
        env=environment,
    )
    return Client(command, read_timeout_seconds=120)


@asynccontextmanager
async def http_connection(farm: LocalFarm, key: str | None) -> AsyncIterator[Client]:
    """A streamable HTTP connection to /mcp through Envoy with `key` (None: none), for the block."""
    headers = {"authorization": f"Bearer {key}"} if key is not None else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(120)) as http:
        transport = streamable_http_client(f"{farm.envoy_url}/mcp", http_client=http)
        async with Client(transport, read_timeout_seconds=120) as client:
            yield client


def _envoy(farm: LocalFarm, key: str) -> httpx.Client:
    """An HTTP client for the farm's Envoy with `key` as bearer (tests/e2e/conftest.py
    imports this module, so its http_client cannot be imported here)."""
    return httpx.Client(
        base_url=farm.envoy_url, headers={"authorization": f"Bearer {key}"}, timeout=120
    )


def active_sessions(farm: LocalFarm, key: str) -> list[str]:
    """Ids of the active sessions `key`'s tenant sees (ListSessions)."""
    with _envoy(farm, key) as http:
        response = http.get("/v1/sessions", params={"state": "SESSION_STATE_ACTIVE"})
    assert response.status_code == 200, response.text
    return [session["id"] for session in response.json().get("sessions", [])]


def revoke(farm: LocalFarm, key_id: str) -> None:
    """Revokes key `key_id` with the farm's admin key."""
    with _envoy(farm, farm.admin_key) as http:
        response = http.delete(f"/v1/apiKeys/{key_id}")
    assert response.status_code == 200, response.text
