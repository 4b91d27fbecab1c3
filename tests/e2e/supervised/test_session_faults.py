"""Sessions when their agent goes away: killed (AGENT_LOST) or drained (AGENT_DRAINING).

On the package's supervised farm of two agents (conftest.py), as these tests kill and
drain agents; killed agents come back after 0.2 s. The drain test leaves its agent
ended: this module runs last in the package. Its sessions store nothing, so the storage
service a chaos test left stopped is not started again for them.
"""

import contextlib
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import psutil
import pytest

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.sessions_api import Sessions

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def fault_farm(chaos_farm: LocalFarm) -> LocalFarm:
    """The package's farm (conftest.py): its sessions' agents are noticed lost within 3 s."""
    return chaos_farm


@pytest.fixture(scope="module")
def sessions(fault_farm: LocalFarm) -> Iterator[Sessions]:
    headers = {"authorization": f"Bearer {fault_farm.admin_key}"}
    with httpx.Client(base_url=fault_farm.envoy_url, headers=headers, timeout=120) as http:
        yield Sessions(http)


def test_a_session_whose_agent_is_killed_is_closed_as_agent_lost(
    fault_farm: LocalFarm, sessions: Sessions
) -> None:
    session = sessions.create()
    agent = fault_farm.process(session["agentId"]).pid
    browsers = chromium_under(agent)
    assert browsers, "the agent runs no browser"
    fault_farm.kill(session["agentId"], signal.SIGKILL)
    # Its browsers (the session's, spare ones, the pool's) do not outlive it.
    deadline = time.monotonic() + 10
    while alive := [browser for browser in browsers if still_running(browser)]:
        assert time.monotonic() < deadline, f"browsers outlived their agent: {alive}"
        time.sleep(0.1)
    # Closed for its agent's loss (FARM_SCHEDULER_SESSION_AGENT_LOST_SECONDS, 3 s), not at
    # its idle timeout (300 s): the reason tells which, however loaded the machine.
    closed = sessions.wait_closed(session["id"], within=60)
    assert closed["closeReason"] == "AGENT_LOST", closed
    response = sessions.http.post(f"/v1/sessions/{session['id']}:run", json={"content": {}})
    assert response.status_code == 400
    assert "closed (AGENT_LOST)" in response.json()["message"]
    # The farm opens the next session as ever (on the other agent or the restarted one).
    sessions.close(sessions.create()["id"])


def test_a_command_to_a_session_on_a_dead_agent_fails_at_once(
    fault_farm: LocalFarm, sessions: Sessions
) -> None:
    session = sessions.create()
    agent = session["agentId"]
    if fault_farm.process(agent).alive():
        fault_farm.kill(agent, signal.SIGKILL)
    response = sessions.http.post(f"/v1/sessions/{session['id']}:run", json={"content": {}})
    # A command that waited for an answer until its time limit would end 504 (DEADLINE_EXCEEDED,
    # "did not answer … within"): the answer says it failed at once, on nobody listening.
    assert response.status_code != 504, f"the command hung on a dead agent: {response.text}"
    if response.status_code == 503:
        # Nobody listened and its last heartbeat is recent: as an agent reconnecting to
        # NATS, the session is kept until the heartbeats are missed.
        message = response.json()["message"]
        assert "does not answer (it is not running)" in message, message
        assert "try again" in message
        assert sessions.wait_closed(session["id"], within=15)["closeReason"] == "AGENT_LOST"
    else:
        # The restarted agent answered first: it does not hold the session.
        assert response.status_code == 400, response.text
        assert "AGENT_LOST" in response.json()["message"]


def test_draining_an_agent_closes_its_sessions_after_the_drain_limit(
    fault_farm: LocalFarm, sessions: Sessions
) -> None:
    wait_for_agents(fault_farm, sessions)
    session = sessions.create()
    agent = session["agentId"]
    response = sessions.http.post(f"/v1/agents/{agent}:drain")
    assert response.status_code == 200, response.text
    closed = sessions.wait_closed(session["id"], within=15)
    assert closed["closeReason"] == "AGENT_DRAINING"


def chromium_under(pid: int) -> list[psutil.Process]:
    """The Chromium processes among `pid`'s descendants (one that ends meanwhile is left out)."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if "chromium" in child.name():
                found.append(child)
    return found


def still_running(process: psutil.Process) -> bool:
    """Whether `process` runs (a zombie waiting for its parent to reap it does not)."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_for_agents(farm: LocalFarm, sessions: Sessions) -> None:
    """Waits until every agent runs (killed ones restarted) and has beaten since, undrained.

    A killed agent's last heartbeat stays in the bucket for a while: only one sent
    after its process was seen running counts.
    """
    names = [f"agent-{number}" for number in range(1, farm.config.agents + 1)]
    deadline = time.monotonic() + 30
    while not all(farm.process(name).alive() for name in names):
        assert time.monotonic() < deadline, "an agent did not come back"
        time.sleep(0.2)
    running_since = datetime.now(UTC)
    while True:
        agents = sessions.http.get("/v1/agents").json().get("agents", [])
        ready = [
            agent
            for agent in agents
            if not agent.get("draining")
            and datetime.fromisoformat(agent["heartbeatTime"]) > running_since
        ]
        if len(ready) >= len(names):
            return
        assert time.monotonic() < deadline, f"agents: {agents}"
        time.sleep(0.2)
