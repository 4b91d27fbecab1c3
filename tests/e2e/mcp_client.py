"""MCP connections to a test farm (`farm mcp` over stdio, /mcp through Envoy) and their calls."""

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import TextContent

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import http_client

SCOPES = ("sessions", "artifacts.read", "script")
"""What a key needs for every tool."""


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


def active_sessions(farm: LocalFarm, key: str) -> list[str]:
    """Ids of the active sessions `key`'s tenant sees (ListSessions)."""
    with http_client(farm, key) as http:
        response = http.get("/v1/sessions", params={"state": "SESSION_STATE_ACTIVE"})
    assert response.status_code == 200, response.text
    return [session["id"] for session in response.json().get("sessions", [])]


def revoke(farm: LocalFarm, key_id: str) -> None:
    """Revokes key `key_id` with the farm's admin key."""
    with http_client(farm, farm.admin_key) as http:
        response = http.delete(f"/v1/apiKeys/{key_id}")
    assert response.status_code == 200, response.text
