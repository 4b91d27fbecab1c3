"""A CreateSession whose caller gives up while the agent still opens the browser.

A farm of its own: one agent with one place, sessions that wait up to 20 s for a
place. A session opened first holds the place, so the next CreateSession waits on
the agent longer than its caller's deadline. The browser that opening would start
must not stay open, unknown to the API, holding the agent's only place.
"""

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import grpc
import httpx
import pytest

from farm.sessions.v1 import sessions_pb2, sessions_pb2_grpc
from farm_cli.launcher.farm import LocalFarm
from tests.e2e.sessions_api import Sessions
from tests.farms import whole_farm_config
from tests.helpers import assert_eventually

pytestmark = [pytest.mark.e2e]

CALLER_SECONDS = 3
SLOW_OPEN_ENV = {
    "FARM_AGENT_CONCURRENCY": "1",
    # Longer than the caller waits, shorter than the scheduler's wait for the agent.
    "FARM_AGENT_SESSION_PLACE_WAIT_SECONDS": "20",
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
