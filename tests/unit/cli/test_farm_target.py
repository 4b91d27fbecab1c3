"""Which farm the CLI calls: FARM_URL, else FARM_HOME's running farm (edge.json), else the
default address, but FARM_HOME's admin key only ever to FARM_HOME's farm or a named URL."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from farm_cli.console import CliError
from farm_cli.launcher.edge import remove_edge_record, write_edge_record
from farm_cli.launcher.lock import FarmLock
from farm_cli.main import main
from farm_cli.target import FarmTarget, farm_target
from tests.unit.cli.fake_calls import Calls


@pytest.fixture
def running_home(farm_home: Path) -> Iterator[Path]:
    """A FARM_HOME whose launcher (this process) holds the lock and records its farm."""
    lock = FarmLock(farm_home / "run")
    lock.acquire()
    write_edge_record(farm_home, "https://127.0.0.1:9080", farm_home / "tls" / "ca.pem")
    yield farm_home
    remove_edge_record(farm_home)
    lock.release()


def test_farm_url_wins_over_the_farm_of_farm_home(running_home: Path) -> None:
    environ = {"FARM_HOME": str(running_home), "FARM_URL": "http://10.0.0.5:8080"}
    assert farm_target(environ, Path("/")) == FarmTarget("10.0.0.5:8080", False, None)


def test_the_running_farm_of_farm_home_is_called_with_its_ca(running_home: Path) -> None:
    target = farm_target({"FARM_HOME": str(running_home)}, Path("/"))
    assert target == FarmTarget("127.0.0.1:9080", True, str(running_home / "tls" / "ca.pem"))


def test_farm_ca_file_wins_over_the_recorded_ca(running_home: Path) -> None:
    environ = {"FARM_HOME": str(running_home), "FARM_CA_FILE": "/etc/other-ca.pem"}
    assert farm_target(environ, Path("/")).ca_file == "/etc/other-ca.pem"


def test_a_relative_farm_home_is_found_from_the_working_directory(running_home: Path) -> None:
    environ = {"FARM_HOME": running_home.name}
    assert farm_target(environ, running_home.parent).address == "127.0.0.1:9080"


def test_a_record_left_by_a_stopped_launcher_names_no_farm(farm_home: Path) -> None:
    # Written by this process, but no launcher holds the lock: as after a SIGKILL.
    write_edge_record(farm_home, "http://127.0.0.1:9080", None)
    with pytest.raises(CliError) as error:
        farm_target({"FARM_HOME": str(farm_home)}, Path("/"))
    assert f"{farm_home}/edge.json is left from a farm that has stopped" in str(error.value)
    assert "set FARM_URL" in str(error.value)


def test_a_record_of_another_launcher_than_the_lock_holder_names_no_farm(
    farm_home: Path,
) -> None:
    lock = FarmLock(farm_home / "run")
    lock.acquire()
    try:
        (farm_home / "edge.json").write_text(
            '{"url": "http://127.0.0.1:9080", "ca_file": null, "launcher_pid": 1}'
        )
        with pytest.raises(CliError, match="left from a farm that has stopped"):
            farm_target({"FARM_HOME": str(farm_home)}, Path("/"))
    finally:
        lock.release()


def test_a_named_key_without_a_running_farm_goes_to_the_default_address(
    farm_home: Path,
) -> None:
    write_edge_record(farm_home, "http://127.0.0.1:9080", None)
    environ = {"FARM_HOME": str(farm_home), "FARM_API_KEY": "bf_named"}
    assert farm_target(environ, Path("/")) == FarmTarget("127.0.0.1:8080", False, None)


def test_outside_a_checkout_a_named_key_goes_to_the_default_address(tmp_path: Path) -> None:
    assert farm_target({"FARM_API_KEY": "bf_named"}, tmp_path).address == "127.0.0.1:8080"


def test_the_admin_key_goes_to_the_farm_of_its_farm_home(
    calls: Calls, monkeypatch: pytest.MonkeyPatch, farm_home: Path, fake: tuple[int, Calls]
) -> None:
    (farm_home / "admin-key").write_text("bf_from-file\n")
    monkeypatch.delenv("FARM_API_KEY")
    monkeypatch.delenv("FARM_URL")
    monkeypatch.setenv("FARM_HOME", str(farm_home))
    lock = FarmLock(farm_home / "run")
    lock.acquire()
    try:
        write_edge_record(farm_home, f"http://127.0.0.1:{fake[0]}", None)
        assert main(["whoami"]) == 0
    finally:
        lock.release()
    assert calls.last("WhoAmI")[1]["authorization"] == "Bearer bf_from-file"


def test_the_admin_key_is_not_sent_to_the_default_address_when_its_farm_is_down(
    calls: Calls,
    monkeypatch: pytest.MonkeyPatch,
    farm_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (farm_home / "admin-key").write_text("bf_from-file\n")
    monkeypatch.delenv("FARM_API_KEY")
    monkeypatch.delenv("FARM_URL")
    monkeypatch.setenv("FARM_HOME", str(farm_home))
    assert main(["whoami"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: no farm to call: FARM_URL is not set and {farm_home}/edge.json")
    assert "does not exist" in err and "make run" in err


@pytest.mark.parametrize("command", [["status"], ["whoami"]])
def test_in_a_new_farm_home_a_command_says_no_farm_runs_there_not_that_a_key_is_missing(
    monkeypatch: pytest.MonkeyPatch,
    farm_home: Path,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    monkeypatch.delenv("FARM_API_KEY", raising=False)
    monkeypatch.delenv("FARM_URL", raising=False)
    monkeypatch.setenv("FARM_HOME", str(farm_home))
    assert main(command) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: no farm to call: FARM_URL is not set and {farm_home}/edge.json")
    assert "Start it (`make run`, or `farm up`), or set FARM_URL" in err
    assert "API key" not in err


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("http://farm.test:8080", FarmTarget("farm.test:8080", False, None)),
        ("http://farm.test", FarmTarget("farm.test:80", False, None)),
        ("https://farm.test/", FarmTarget("farm.test:443", True, None)),
        ("HTTPS://farm.test:8443", FarmTarget("farm.test:8443", True, None)),
        ("http://[::1]", FarmTarget("[::1]:80", False, None)),
        ("farm.test:8080", FarmTarget("farm.test:8080", False, None)),
    ],
)
def test_a_farm_url_without_a_port_takes_its_schemes(url: str, target: FarmTarget) -> None:
    assert farm_target({"FARM_URL": url, "FARM_API_KEY": "bf_named"}, Path("/")) == target


@pytest.mark.parametrize("url", ["ftp://farm.test:21", "http://farm.test:8080/v1", "http://"])
def test_a_farm_url_of_another_scheme_or_with_a_path_is_refused(url: str) -> None:
    with pytest.raises(CliError) as error:
        farm_target({"FARM_URL": url, "FARM_API_KEY": "bf_named"}, Path("/"))
    assert str(error.value) == f"FARM_URL must be host:port or http(s)://host:port, got {url!r}"
