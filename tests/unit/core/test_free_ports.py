"""Free ports: from the kernel, or from FARM_FREE_PORT_RANGE (one range per pytest worker)."""

import socket

import pytest

from farm_cli.launcher.processes import free_ports
from farm_core.free_ports import PORT_RANGE_ENV, free_port
from tests.conftest import FIRST_TEST_PORT

# Ten ports just below the workers' ranges, where no test's farm takes one.
LOW = FIRST_TEST_PORT - 100
RANGE = f"{LOW}-{LOW + 9}"


def test_a_free_port_comes_from_the_range_when_one_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PORT_RANGE_ENV, RANGE)
    assert {free_port() for _ in range(20)} <= set(range(LOW, LOW + 10))


def test_a_free_port_comes_from_the_kernel_without_a_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(PORT_RANGE_ENV, raising=False)
    port = free_port()
    # The kernel's choice, free to listen on (a port in use would refuse the bind).
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))


def test_ports_drawn_together_are_distinct(monkeypatch: pytest.MonkeyPatch) -> None:
    # Ten draws from a range of ten repeat a port almost surely; together they do not.
    monkeypatch.setenv(PORT_RANGE_ENV, RANGE)
    assert sorted(free_ports(10)) == list(range(LOW, LOW + 10))
