"""`farm up --port-offset N`: every port of the farm moved at once, names set exactly winning."""

import argparse
from dataclasses import fields
from pathlib import Path

import pytest

from farm_cli.commands.up import chosen_ports
from farm_cli.launcher.farm import LocalFarm
from farm_cli.launcher.launched import FarmInterrupted
from farm_cli.launcher.lock import FarmLock
from farm_cli.launcher.ports import MAX_AGENTS, FarmPorts
from farm_cli.main import build_parser, main


def up_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["up", *argv])


def test_an_offset_moves_every_port_of_the_farm() -> None:
    moved = chosen_ports(up_args("--port-offset", "1000"), {})
    defaults = FarmPorts()
    for port_field in fields(FarmPorts):
        assert getattr(moved, port_field.name) == getattr(defaults, port_field.name) + 1000
    assert moved.agent(3) == defaults.agent(3) + 1000


def test_a_moved_farm_shares_no_port_with_one_on_the_defaults() -> None:
    moved = {port for _, port in chosen_ports(up_args("--port-offset=1000"), {}).all_ports(10)}
    defaults = {port for _, port in FarmPorts().all_ports(agents=MAX_AGENTS)}
    assert moved.isdisjoint(defaults)


def test_ports_set_by_name_win_over_the_offset() -> None:
    args = up_args("--port-offset", "1000", "--envoy-port", "8443")
    ports = chosen_ports(args, {"FARM_AUTH_PORT": "7001", "FARM_AGENT_PORT": "7600"})
    assert (ports.envoy, ports.auth, ports.agent(2)) == (8443, 7001, 7601)
    assert ports.storage == FarmPorts.storage + 1000


def test_without_an_offset_the_ports_are_the_defaults() -> None:
    assert chosen_ports(up_args(), {}) == FarmPorts()


@pytest.mark.parametrize(
    ("offset", "message"),
    [
        ("48232", "must be between -3293 and 48231 so that every port of the farm stays"),
        ("-3294", "must be between -3293 and 48231"),
        ("100", "100 would move auth to 7201, the default port of auth_metrics"),
        ("ten", "must be a whole number, got 'ten'"),
    ],
)
def test_an_offset_out_of_range_or_onto_the_defaults_is_refused_naming_the_flag(
    offset: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["up", "--port-offset", offset])
    assert exit_info.value.code == 2
    assert f"farm up: error: argument --port-offset: {message}" in capsys.readouterr().err


def test_the_largest_offset_keeps_every_port_below_65536() -> None:
    ports = chosen_ports(up_args("--port-offset", "48231"), {})
    assert max(port for _, port in ports.all_ports(agents=MAX_AGENTS)) == 65535


def test_a_farm_already_running_on_the_home_is_said_before_anything_about_ports(
    farm_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FARM_HOME", str(farm_home))
    for port_field in fields(FarmPorts):
        monkeypatch.delenv(FarmPorts.variable(port_field.name), raising=False)
    held = FarmLock(farm_home / "run")
    held.acquire()
    try:
        code = main(["up", "--infra-only", "--port-offset", "1000"])
    finally:
        held.release()

    out, err = capsys.readouterr()
    assert code == 1
    assert err.startswith(f"error: a farm is already running with FARM_HOME {farm_home} ")
    assert out == ""


@pytest.mark.parametrize(
    ("argv", "refused"),
    [
        (["--port-offset", "2000"], "Envoy's 10080"),
        (["--envoy-port", "6000"], "Envoy's 6000"),
        (["--port-offset", "-3090", "--observe"], "Prometheus's 6000"),
    ],
)
def test_farm_up_warns_when_browsers_refuse_the_port_its_console_is_on(
    argv: list[str],
    refused: str,
    farm_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Chromium and Firefox open no page on 10080 (net::ERR_UNSAFE_PORT): the farm answers
    # curl there, but its console could not be opened, and nothing said why.
    monkeypatch.setenv("FARM_HOME", str(farm_home))
    for port_field in fields(FarmPorts):
        monkeypatch.delenv(FarmPorts.variable(port_field.name), raising=False)
    monkeypatch.setattr(LocalFarm, "start", interrupted)

    assert main(["up", *argv]) == 1

    err = capsys.readouterr().err
    assert f"warning: browsers refuse to open {refused} (net::ERR_UNSAFE_PORT" in err
    assert "--port-offset 1000" in err


def test_farm_up_on_ports_browsers_open_warns_of_nothing(
    farm_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FARM_HOME", str(farm_home))
    for port_field in fields(FarmPorts):
        monkeypatch.delenv(FarmPorts.variable(port_field.name), raising=False)
    monkeypatch.setattr(LocalFarm, "start", interrupted)

    assert main(["up", "--port-offset", "1000", "--observe"]) == 1

    assert "warning" not in capsys.readouterr().err


def interrupted(farm: LocalFarm) -> None:
    """LocalFarm.start stopped at once, as by Ctrl-C: nothing of the farm is started."""
    farm.stop()
    raise FarmInterrupted
