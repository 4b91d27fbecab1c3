"""Callers that give up while their session opens: over the API, and MCP tool calls.

A farm of its own: one agent with one place, sessions that wait up to 20 s for a
place, MCP tool calls limited to 5 s. A session opened first holds the place, so the
next CreateSession waits on the agent longer than its caller's deadline, and an MCP
connection's CreateSession longer than its tool call may.

Over the API, the browser that opening would start must not stay open, unknown to the
API, holding the agent's only place. Over MCP, the opening goes on: the connection's
next call is served by it, or it is closed once open if the browser was closed
meanwhile (the MCP service's side: database_neutral as test_mcp.py).
"""

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import grpc
import httpx
import pytest

from farm.sessions.v1 import sessions_pb2, sessions_pb2_grpc
from farm_cli.launcher.farm import LocalFarm
from tests.e2e.mcp_client import active_sessions, call, http_connection, texts
from tests.e2e.sessions_api import Sessions
from tests.farms import whole_farm_config
from tests.helpers import assert_eventually
from tests.pages import Site

pytestmark = [pytest.mark.e2e]

CALLER_SECONDS = 3
TOOL_SECONDS = 5
SLOW_OPEN_ENV = {
    "FARM_AGENT_CONCURRENCY": "1",
    # Longer than a caller waits or a tool call may take, shorter than the scheduler's
    # wait for the agent's answer (FARM_SCHEDULER_SESSION_OPEN_TIMEOUT_SECONDS, 30 s),
    # so the farm does open it.
    "FARM_AGENT_SESSION_PLACE_WAIT_SECONDS": "20",
    "FARM_MCP_TOOL_TIMEOUT_SECONDS": str(TOOL_SECONDS),
}


@pytest.fixture(scope="module")
def one_place_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    config = whole_farm_config(tmp_path_factory.mktemp("gaveup"), agents=1)
    with LocalFarm(replace(config, service_env=SLOW_OPEN_ENV)) as farm:
        yield farm


@pytest.fixture
def sessions(one_place_farm: LocalFarm) -> Iterator[Sessions]:
    headers = {"authorization": f"Bearer {one_place_farm.admin_key}"}
    with httpx.Client(base_url=one_place_farm.envoy_url, headers=headers, timeout=120) as http:
        yield Sessions(http)


def the_agent(sessions: Sessions) -> dict[str, Any]:
    """The farm's only agent as GetFleetStatus shows it."""
    response = sessions.http.get("/v1/fleetStatus")
    assert response.status_code == 200, response.text
    [agent] = response.json()["agents"]
    return dict(agent)


async def test_a_create_whose_caller_gave_up_mid_open_leaves_no_browser(
    one_place_farm: LocalFarm, sessions: Sessions
) -> None:
    blocker = sessions.create()
    target = one_place_farm.envoy_url.removeprefix("http://")
    with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as gave_up:
        sessions_pb2_grpc.SessionServiceStub(channel).CreateSession(
            sessions_pb2.CreateSessionRequest(),
            timeout=CALLER_SECONDS,
            metadata=(("authorization", f"Bearer {one_place_farm.admin_key}"),),
        )
    assert gave_up.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    sessions.close(blocker["id"])
    # The opening the caller gave up on takes the freed place first; it must give it
    # back, or this session finds none.
    second = sessions.create()

    def agent_holds_only_the_second() -> bool:
        return bool(the_agent(sessions).get("sessionIds", []) == [second["id"]])

    await assert_eventually(
        agent_holds_only_the_second, within=30, message="the agent holds a session no one knows"
    )
    sessions.close(second["id"])

    def agent_is_free() -> bool:
        agent = the_agent(sessions)
        return not agent.get("sessionIds") and agent.get("freePlaces") == 1

    await assert_eventually(agent_is_free, within=30, message="the agent's place stays taken")


@pytest.mark.database_neutral
async def test_a_session_opened_after_its_tool_call_gave_up_serves_the_next_call(
    one_place_farm: LocalFarm, sessions: Sessions, site: Site
) -> None:
    key = one_place_farm.admin_key
    blocker = sessions.create()
    async with http_connection(one_place_farm, key) as client:
        waited = await client.call_tool("navigate", {"url": site.url("/page")})
        assert waited.is_error

        sessions.close(blocker["id"])
        # The opening went on: its session, not a second one, takes the freed place.
        opened = await call(client, "navigate", url=site.url("/form"))
        assert 'Page: "Form"' in opened
        [mcp_session] = active_sessions(one_place_farm, key)
        assert mcp_session != blocker["id"]
        assert "has not opened the browser yet" in texts(waited)

    await assert_eventually(
        lambda: active_sessions(one_place_farm, key) == [],
        within=15,
        message="the connection's session outlived it",
    )


@pytest.mark.database_neutral
async def test_a_browser_closed_while_its_session_opens_is_closed_once_open(
    one_place_farm: LocalFarm, sessions: Sessions, site: Site
) -> None:
    key = one_place_farm.admin_key
    earlier = {session["id"] for session in closed_sessions(sessions)}
    blocker = sessions.create()
    async with http_connection(one_place_farm, key) as client:
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
    assert active_sessions(one_place_farm, key) == []


def closed_sessions(sessions: Sessions) -> list[dict[str, object]]:
    response = sessions.http.get("/v1/sessions", params={"state": "SESSION_STATE_CLOSED"})
    assert response.status_code == 200, response.text
    return list(response.json().get("sessions", []))
