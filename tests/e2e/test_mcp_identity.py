"""The MCP service acts for its callers without auth's signing key: auth renews their tokens;
and it closes a connection's browser left idle.

A farm of its own whose identity tokens live 2 s, so a tool call, or a browser's
close, outlasts the token the caller's request brought. The MCP process holds no
FARM_IDENTITY_KEY; it has auth renew the caller's token (IdentityRenewalService),
which auth refuses once the caller's key is revoked. Its MCP service also closes a
connection's browser after 10 s without a tool call (its least), looking every half
second: the other tests' connections leave no more than 3 s between their calls.
"""

import asyncio
import secrets
from collections.abc import Iterator
from dataclasses import replace

import grpc
import pytest
from mcp.types import ImageContent

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import KeyFactory, http_client
from tests.e2e.mcp_client import active_sessions, call, http_connection, revoke, texts
from tests.farms import whole_farm_config
from tests.helpers import assert_eventually
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral, pytest.mark.slow]

TOKEN_SECONDS = 2
IDLE_SECONDS = 10
SCOPES = ("sessions", "artifacts.read", "script")


@pytest.fixture(scope="module")
def short_token_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    """A farm of one agent whose identity tokens live TOKEN_SECONDS, one signed per request,
    and whose MCP service ends a browser idle for IDLE_SECONDS."""
    config = whole_farm_config(tmp_path_factory.mktemp("mcpid"), agents=1)
    config = replace(
        config,
        service_env={
            **config.service_env,
            "FARM_AUTH_IDENTITY_TTL_SECONDS": str(TOKEN_SECONDS),
            "FARM_AUTH_IDENTITY_REUSE_SECONDS": "0",
            # A token with a second left is still carried as it is.
            "FARM_MCP_RENEW_BEFORE_SECONDS": "1",
            # The revoked key's session is still open when the farm stops: its agent
            # closes it after a second, not after FARM_GRACE_SECONDS (20 s).
            "FARM_AGENT_SESSION_DRAIN_SECONDS": "1",
            "FARM_MCP_IDLE_TIMEOUT_SECONDS": str(IDLE_SECONDS),
            "FARM_MCP_SWEEP_SECONDS": "0.5",
        },
    )
    with LocalFarm(config) as farm:
        yield farm


@pytest.fixture(scope="module")
def keys(short_token_farm: LocalFarm) -> Iterator[KeyFactory]:
    """Makes API keys on the short-token farm."""
    target = short_token_farm.envoy_url.removeprefix("http://")
    with grpc.insecure_channel(target) as channel:
        yield KeyFactory(short_token_farm, channel)


def session_states(farm: LocalFarm, key: str) -> dict[str, str]:
    """Each session of `key`'s tenant: its id and state."""
    with http_client(farm, key) as http:
        response = http.get("/v1/sessions")
    assert response.status_code == 200, response.text
    return {s["id"]: s["state"] for s in response.json().get("sessions", [])}


def test_the_mcp_service_holds_no_identity_signing_key(short_token_farm: LocalFarm) -> None:
    environment = short_token_farm.process("mcp").spec.env
    assert "FARM_IDENTITY_KEY" not in environment
    assert environment["FARM_MCP_CREDENTIAL"]
    assert "FARM_IDENTITY_KEY" in short_token_farm.process("auth").spec.env


async def test_a_tool_call_that_outlasts_the_callers_token_still_reads_its_artifact(
    short_token_farm: LocalFarm, keys: KeyFactory, site: Site
) -> None:
    key = keys(*SCOPES, tenant=f"mcpid-{secrets.token_hex(4)}").secret
    gate = f"late-{secrets.token_hex(4)}"
    appear = (
        f"(fetch('/gate/{gate}').then(() => {{ const late = document.createElement('h2');"
        " late.id = 'late'; late.textContent = 'late'; document.body.append(late); }), 'armed')"
    )
    async with http_connection(short_token_farm, key) as client:
        await call(client, "navigate", url=site.url("/form"))
        assert await call(client, "evaluate", script=appear) == '"armed"'
        # The screenshot waits for #late, which appears once the gate opens; then the
        # tool reads the image from storage, after the token its request brought expired.
        shot = asyncio.create_task(client.call_tool("screenshot", {"selector": "#late"}))
        await asyncio.sleep(TOKEN_SECONDS + 1)
        site.release(gate)
        result = await shot
    assert not result.is_error, texts(result)
    assert any(isinstance(block, ImageContent) for block in result.content)


async def test_a_browser_is_closed_after_the_token_expired_but_not_for_a_revoked_key(
    short_token_farm: LocalFarm, keys: KeyFactory, site: Site
) -> None:
    tenant = f"mcpid-{secrets.token_hex(4)}"
    kept, revoked, reader = (keys(*SCOPES, tenant=tenant) for _ in range(3))
    async with http_connection(short_token_farm, kept.secret) as client:
        await call(client, "navigate", url=site.url("/page"))
        [kept_session] = session_states(short_token_farm, reader.secret)
        await asyncio.sleep(TOKEN_SECONDS + 1)
        # Ending the MCP session closes its browser with the (renewed) token of its
        # last tool call, long expired.
    assert session_states(short_token_farm, reader.secret) == {kept_session: "SESSION_STATE_CLOSED"}

    async with http_connection(short_token_farm, revoked.secret) as client:
        await call(client, "navigate", url=site.url("/page"))
        opened = session_states(short_token_farm, reader.secret)
        [revoked_session] = [s for s, state in opened.items() if state == "SESSION_STATE_ACTIVE"]
        revoke(short_token_farm, revoked.api_key.id)
        # Its DELETE is refused at the edge now: the MCP service keeps the browser.
        # The token of its last tool call may still be valid (identity tokens are bearer
        # tokens until they expire); once it has expired, a close needs a renewal.
        await asyncio.sleep(TOKEN_SECONDS + 1)
    # The service, stopping, closes every browser it holds: auth refuses to renew the
    # revoked key's token, so that farm session stays open (the farm's own idle
    # timeout ends it).
    await asyncio.to_thread(short_token_farm.stop_process, "mcp")
    try:
        states = session_states(short_token_farm, reader.secret)
        assert states[revoked_session] == "SESSION_STATE_ACTIVE"
        log = short_token_farm.process("mcp").log_path.read_text()
        assert "could not close the farm session" in log and "revoked" in log
    finally:
        await asyncio.to_thread(short_token_farm.start_process, "mcp")


async def test_the_call_after_an_idle_close_says_the_browser_closed(
    short_token_farm: LocalFarm, keys: KeyFactory, site: Site
) -> None:
    key = keys(*SCOPES, tenant=f"idle-{secrets.token_hex(4)}").secret
    async with http_connection(short_token_farm, key) as client:
        await call(client, "navigate", url=site.url("/form"))
        [session] = active_sessions(short_token_farm, key)
        await assert_eventually(
            lambda: active_sessions(short_token_farm, key) == [],
            within=IDLE_SECONDS * 3,
            message="the idle browser was not closed",
        )
        after = await client.call_tool("get_content", {})
        again = await call(client, "get_content")
    assert after.is_error, texts(after)
    assert f"the browser (farm session {session}) has closed" in texts(after)
    assert "the next tool call opens a new one" in texts(after)
    assert "at about:blank" in again
