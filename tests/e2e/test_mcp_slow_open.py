"""An MCP tool call that gives up waiting for its farm session to open.

A farm of its own: one agent with one place, sessions that wait up to 20 s for a
place, MCP tool calls limited to 5 s. A session opened over the API holds the
place, so the MCP connection's CreateSession waits longer than its tool call may.
"""

from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.sessions_api import Sessions
from tests.e2e.test_mcp import active_sessions, call, http_connection, texts
from tests.farms import whole_farm_config
from tests.helpers import assert_eventually
from tests.pages import Site

pytestmark = [pytest.mark.e2e]

TOOL_SECONDS = 5
SLOW_OPEN_ENV = {
    "FARM_AGENT_CONCURRENCY": "1",
    # Longer than a tool call, shorter than the scheduler's wait for the agent's answer
    # (FARM_SCHEDULER_SESSION_OPEN_TIMEOUT_SECONDS, 30 s), so the farm does open it.
    "FARM_AGENT_SESSION_PLACE_WAIT_SECONDS": "20",
    "FARM_MCP_TOOL_TIMEOUT_SECONDS": str(TOOL_SECONDS),
}


@pytest.fixture(scope="module")
def slow_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    config = whole_farm_config(tmp_path_factory.mktemp("slowopen"), agents=1)
    with LocalFarm(replace(config, service_env=SLOW_OPEN_ENV)) as farm:
        yield farm


@pytest.fixture
def sessions(slow_farm: LocalFarm) -> Iterator[Sessions]:
    headers = {"authorization": f"Bearer {slow_farm.admin_key}"}
    with httpx.Client(base_url=slow_farm.envoy_url, headers=headers, timeout=120) as http:
        yield Sessions(http)


async def test_a_session_opened_after_its_tool_call_gave_up_serves_the_next_call(
    slow_farm: LocalFarm, sessions: Sessions, site: Site
) -> None:
    key = slow_farm.admin_key
    blocker = sessions.create()
    async with http_connection(slow_farm, key) as client:
        waited = await client.call_tool("navigate", {"url": site.url("/page")})
        assert waited.is_error

        sessions.close(blocker["id"])
        # The opening went on: its session, not a second one, takes the freed place.
        opened = await call(client, "navigate", url=site.url("/form"))
        assert 'Page: "Form"' in opened
        [mcp_session] = active_sessions(slow_farm, key)
        assert mcp_session != blocker["id"]
        assert "has not opened the browser yet" in texts(waited)

    await assert_eventually(
        lambda: active_sessions(slow_farm, key) == [],
        within=15,
        message="the connection's session outlived it",
    )


async def test_a_browser_closed_while_its_session_opens_is_closed_once_open(
    slow_farm: LocalFarm, sessions: Sessions, site: Site
) -> None:
    key = slow_farm.admin_key
    earlier = {session["id"] for session in closed_sessions(sessions)}
    blocker = sessions.create()
    async with http_connection(slow_farm, key) as client:
        waited = await client.call_tool("navigate", {"url": site.url("/page")})
        assert waited.is_error
        assert await call(client, "close_browser") == "No browser was open."
        sessions.close(blocker["id"])

        # The farm opens the session the call asked for once the place is free; the
        # MCP side closes it then.
        def closed_by_the_mcp_side() -> bool:
            return any(
                session["id"] not in {*earlier, blocker["id"]}
                and session["closeReason"] == "CLOSED_BY_USER"
                for session in closed_sessions(sessions)
            )

        await assert_eventually(
            closed_by_the_mcp_side, within=30, message="no session was opened and closed"
        )
    assert active_sessions(slow_farm, key) == []


def closed_sessions(sessions: Sessions) -> list[dict[str, object]]:
    response = sessions.http.get("/v1/sessions", params={"state": "SESSION_STATE_CLOSED"})
    assert response.status_code == 200, response.text
    return list(response.json().get("sessions", []))
