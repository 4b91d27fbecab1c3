"""docs/mcp.md's claims on the HTTP endpoint: its Python example runs, revisions are as said.

The endpoint is the service's (`McpEndpoint` around the SDK's streamable HTTP) on the
fake farm, reached in process through httpx2's ASGI transport.
"""

import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings

from farm_mcp.endpoint import McpEndpoint
from farm_mcp_tools.browser import BrowserSettings, FarmBrowser, LateCloses
from farm_mcp_tools.runner import ToolLimits
from farm_mcp_tools.server import build_server
from tests.unit.mcp.fake_farm import FakeFarm, OneConnection

MCP_DOC = Path(__file__).resolve().parents[3] / "docs" / "mcp.md"
[EXAMPLE] = re.findall(r"^```python\n(.*?)^```$", MCP_DOC.read_text(), re.M | re.S)


class Connections:
    """The connections' end the endpoint calls when a client ends its MCP session."""

    def __init__(self) -> None:
        self.ended: list[str] = []

    async def end(self, session_id: str) -> None:
        self.ended.append(session_id)


@contextlib.asynccontextmanager
async def mcp_endpoint(farm: FakeFarm) -> AsyncIterator[McpEndpoint]:
    """The service's /mcp endpoint on `farm`, its SDK session manager running."""
    browser = FarmBrowser(farm, BrowserSettings(), LateCloses(0))  # type: ignore[arg-type]
    server = build_server(OneConnection(browser), ToolLimits())
    server.streamable_http_app(
        streamable_http_path="/mcp",
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    async with server.session_manager.run():
        connections: Any = Connections()
        yield McpEndpoint(StreamableHTTPASGIApp(server.session_manager), connections)


async def test_an_initialize_for_a_newer_revision_is_answered_with_the_newest_it_speaks() -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2026-07-28",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    }
    async with (
        mcp_endpoint(FakeFarm()) as endpoint,
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=endpoint)) as http,
    ):
        answer = await http.post(
            "http://farm/mcp",
            json=initialize,
            headers={"accept": "application/json, text/event-stream"},
        )
    assert answer.status_code == 200
    [data] = [line for line in answer.text.splitlines() if line.startswith("data: ")]
    assert json.loads(data.removeprefix("data: "))["result"]["protocolVersion"] == "2025-11-25"
    assert "2025-11-25, the newest\nit speaks" in MCP_DOC.read_text()


def test_the_python_example_runs_with_the_pinned_sdk(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    farm = FakeFarm()

    class InProcessClient(httpx2.AsyncClient):
        """The example's HTTP client, reaching the endpoint in process."""

        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            self._running = contextlib.AsyncExitStack()

        async def __aenter__(self) -> "InProcessClient":
            endpoint = await self._running.enter_async_context(mcp_endpoint(farm))
            self._transport = httpx2.ASGITransport(app=endpoint)
            await super().__aenter__()
            return self

        async def __aexit__(self, *exc: Any) -> None:
            await super().__aexit__(*exc)
            await self._running.aclose()

    monkeypatch.setattr(httpx2, "AsyncClient", InProcessClient)
    monkeypatch.setenv("FARM_API_KEY", "bf_test")
    # The example runs its own event loop, as a script does.
    exec(compile(EXAMPLE, str(MCP_DOC), "exec"), {"__name__": "example"})
    assert len(farm.commands) == 2 and "https://example.com" in str(farm.commands[0])
    assert capsys.readouterr().out.startswith('Page: "Form" at http://site/form')
