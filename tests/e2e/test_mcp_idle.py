"""An MCP connection over HTTP left idle past the service's idle timeout, then called again.

A farm of its own whose MCP service closes a connection's browser after 10 s
without a tool call (its least), looking every half second.
"""

import secrets
from collections.abc import Iterator
from dataclasses import replace

import grpc
import pytest

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import KeyFactory
from tests.e2e.mcp_client import SCOPES, active_sessions, call, http_connection, texts
from tests.farms import whole_farm_config
from tests.helpers import assert_eventually
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral, pytest.mark.slow]

IDLE_SECONDS = 10


@pytest.fixture(scope="module")
def idle_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    """A farm of one agent whose MCP service ends a browser idle for IDLE_SECONDS."""
    config = whole_farm_config(tmp_path_factory.mktemp("mcpidle"), agents=1)
    config = replace(
        config,
        service_env={
            **config.service_env,
            "FARM_MCP_IDLE_TIMEOUT_SECONDS": str(IDLE_SECONDS),
            "FARM_MCP_SWEEP_SECONDS": "0.5",
        },
    )
    with LocalFarm(config) as farm:
        yield farm


@pytest.fixture
def key(idle_farm: LocalFarm) -> Iterator[str]:
    """A key of a tenant of this test's own, with what the tools need."""
    with grpc.insecure_channel(idle_farm.envoy_url.removeprefix("http://")) as channel:
        yield KeyFactory(idle_farm, channel)(*SCOPES, tenant=f"idle-{secrets.token_hex(4)}").secret


async def test_the_call_after_an_idle_close_says_the_browser_closed(
    idle_farm: LocalFarm, key: str, site: Site
) -> None:
    async with http_connection(idle_farm, key) as client:
        await call(client, "navigate", url=site.url("/form"))
        [session] = active_sessions(idle_farm, key)
        await assert_eventually(
            lambda: active_sessions(idle_farm, key) == [],
            within=IDLE_SECONDS * 3,
            message="the idle browser was not closed",
        )
        after = await client.call_tool("get_content", {})
        again = await call(client, "get_content")
    assert after.is_error, texts(after)
    assert f"the browser (farm session {session}) has closed" in texts(after)
    assert "the next tool call opens a new one" in texts(after)
    assert "at about:blank" in again
