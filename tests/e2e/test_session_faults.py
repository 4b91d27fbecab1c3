"""Sessions when their agent goes away: killed (AGENT_LOST) or drained (AGENT_DRAINING).

A farm of its own (two agents), as these tests kill and drain agents.
"""

import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.sessions_api import Sessions
from tests.farms import whole_farm_config

pytestmark = pytest.mark.e2e

FAULT_ENV = {
    # Lost agents are noticed within a few seconds, not the default 15.
    "FARM_AGENT_HEARTBEAT_SECONDS": "0.5",
    "FARM_SCHEDULER_SESSION_AGENT_LOST_SECONDS": "3",
    "FARM_SCHEDULER_SESSION_SWEEP_INTERVAL_SECONDS": "0.5",
    "FARM_AGENT_SESSION_DRAIN_SECONDS": "2",
    "FARM_GRACE_SECONDS": "5",
}


@pytest.fixture(scope="module")
def fault_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    config = replace(whole_farm_config(tmp_path_factory.mktemp("sfaults")), service_env=FAULT_ENV)
    with LocalFarm(config) as farm:
        # Killed agents come back, as under `farm up`.
        farm.start_supervisor(interval=0.1)
        yield farm


@pytest.fixture(scope="module")
def sessions(fault_farm: LocalFarm) -> Iterator[Sessions]:
    headers = {"authorization": f"Bearer {fault_farm.admin_key}"}
    with httpx.Client(base_url=fault_farm.envoy_url, headers=headers, timeout=120) as http:
        yield Sessions(http)


def test_a_session_whose_agent_is_killed_is_closed_as_agent_lost(
    fault_farm: LocalFarm, sessions: Sessions
) -> None:
    session = sessions.create()
    assert browsers_of(session["id"]), "the session's browser is not running"
    fault_farm.kill(session["agentId"], signal.SIGKILL)
    # Its browser does not outlive it.
    deadline = time.monotonic() + 10
    while browsers_of(session["id"]):
        assert time.monotonic() < deadline, "the session's browser outlived its agent"
        time.sleep(0.1)
    started = time.monotonic()
    closed = sessions.wait_closed(session["id"], within=15)
    assert closed["closeReason"] == "AGENT_LOST"
    assert time.monotonic() - started < 10
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
    started = time.monotonic()
    response = sessions.http.post(f"/v1/sessions/{session['id']}:run", json={"content": {}})
    assert time.monotonic() - started < 5, "the command hung on a dead agent"
    assert response.status_code == 400
    assert "AGENT_LOST" in response.json()["message"]


def test_draining_an_agent_closes_its_sessions_after_the_drain_limit(
    fault_farm: LocalFarm, sessions: Sessions
) -> None:
    wait_for_agents(sessions, 2)
    session = sessions.create()
    agent = session["agentId"]
    response = sessions.http.post(f"/v1/agents/{agent}:drain")
    assert response.status_code == 200, response.text
    closed = sessions.wait_closed(session["id"], within=15)
    assert closed["closeReason"] == "AGENT_DRAINING"


def browsers_of(session_id: str) -> list[int]:
    """PIDs of processes whose command line names the session's browser profile."""
    marker = f"/sessions/{session_id}/browser/profile".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def wait_for_agents(sessions: Sessions, count: int) -> None:
    """Waits until `count` agents beat and none drains (killed ones restarted)."""
    deadline = time.monotonic() + 30
    while True:
        agents = sessions.http.get("/v1/agents").json().get("agents", [])
        if len([a for a in agents if not a.get("draining")]) >= count:
            return
        assert time.monotonic() < deadline, f"agents: {agents}"
        time.sleep(0.2)
