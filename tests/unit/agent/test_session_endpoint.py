"""The address Envoy is told to reach an agent's session endpoints at."""

import socket

import pytest

from farm_agent.sessions.service import advertised_host
from farm_agent.settings import AgentSettings


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, "127.0.0.1"),
        ({"FARM_AGENT_SESSION_HOST": "127.0.0.2"}, "127.0.0.2"),
        ({"FARM_AGENT_SESSION_ADVERTISE_HOST": "10.1.2.3"}, "10.1.2.3"),
        (
            {"FARM_BIND_HOST": "0.0.0.0", "FARM_AGENT_SESSION_ADVERTISE_HOST": "10.1.2.3"},
            "10.1.2.3",
        ),
    ],
)
def test_the_advertised_host_is_the_setting_else_the_listen_address(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], expected: str
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert advertised_host(AgentSettings()) == expected


@pytest.mark.parametrize("listen", ["0.0.0.0", "::"])
def test_an_agent_listening_everywhere_advertises_its_machines_address(
    monkeypatch: pytest.MonkeyPatch, listen: str
) -> None:
    # As in a container: FARM_BIND_HOST=0.0.0.0, which Envoy cannot connect to.
    monkeypatch.setenv("FARM_BIND_HOST", listen)
    assert advertised_host(AgentSettings()) == socket.gethostbyname(socket.gethostname())
