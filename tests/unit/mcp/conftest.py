"""Fixtures of the MCP tools' unit tests: a fake farm and an MCP client of the tools on it."""

from typing import Any

import pytest
from mcp import Client

from farm_mcp_tools.browser import BrowserSettings, FarmBrowser, LateCloses
from farm_mcp_tools.runner import ToolLimits
from farm_mcp_tools.server import build_server
from tests.unit.mcp.fake_farm import FakeFarm, OneConnection


@pytest.fixture
def farm() -> FakeFarm:
    return FakeFarm()


@pytest.fixture
def client_for(farm: FakeFarm) -> Any:
    def make(limits: ToolLimits | None = None) -> Client:
        # Its sessions open at once: no close is ever left to run late.
        browser = FarmBrowser(farm, BrowserSettings(), LateCloses(0))  # type: ignore[arg-type]
        return Client(build_server(OneConnection(browser), limits or ToolLimits()))

    return make
