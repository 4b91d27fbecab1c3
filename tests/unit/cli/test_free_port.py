"""Free ports: from the kernel, or from FARM_FREE_PORT_RANGE (one range per pytest worker)."""

import pytest

from farm_cli.launcher.processes import PORT_RANGE_ENV, free_port, free_ports


def test_a_free_port_comes_from_the_range_when_one_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PORT_RANGE_ENV, "23100-23109")
    assert {free_port() for _ in range(20)} <= set(range(23100, 23110))


def test_a_free_port_comes_from_the_kernel_without_a_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(PORT_RANGE_ENV, raising=False)
    assert 0 < free_port() < 65536


def test_ports_drawn_together_are_distinct(monkeypatch: pytest.MonkeyPatch) -> None:
    # Ten draws from a range of ten repeat a port almost surely; together they do not.
    monkeypatch.setenv(PORT_RANGE_ENV, "23100-23109")
    assert sorted(free_ports(10)) == list(range(23100, 23110))
