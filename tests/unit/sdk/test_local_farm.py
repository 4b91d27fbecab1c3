"""Which farm a client calls with which key: arguments, else FARM_URL / FARM_API_KEY /
FARM_CA_FILE, else the local farm while its launcher runs, whose admin key goes to no
address guessed for it."""

import fcntl
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

import browserfarm
from browserfarm.config import client_options
from browserfarm.local_farm import EdgeRecord, edge_path
from farm.tasks.v1 import tasks_pb2_grpc
from farm_cli.launcher.tls import load_or_create_local_tls
from farm_core.free_ports import free_port
from tests.unit.sdk.conftest import Refusals, RefusingTasks

ADMIN_KEY = "bf_admin-from-file"
RECORDED_URL = "https://127.0.0.1:9080"

# A launcher's writer side, as `farm up` runs it: holds FARM_HOME's lock, records its
# farm, says so, and waits to be killed.
LAUNCHER = """
import sys, time
from pathlib import Path
from farm_cli.launcher.edge import write_edge_record
from farm_cli.launcher.lock import FarmLock
home = Path(sys.argv[1])
lock = FarmLock(home / "run")
lock.acquire()
write_edge_record(home, sys.argv[2], None)
print("up", flush=True)
time.sleep(600)
"""


def record_farm(home: Path, url: str, ca_file: Path | None = None) -> None:
    """Writes `home`'s edge record of `url` as this process's launcher would."""
    edge_path(home).write_text(EdgeRecord(url, ca_file, os.getpid()).to_json())


@pytest.fixture
def locked_home(farm_home: Path) -> Iterator[Path]:
    """A FARM_HOME with an admin key whose lock this process holds, as a launcher does."""
    (farm_home / "admin-key").write_text(f"{ADMIN_KEY}\n")
    (farm_home / "run").mkdir()
    with (farm_home / "run" / "farm.lock").open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield farm_home
        fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture
def running_home(locked_home: Path) -> Path:
    """locked_home with its farm recorded: a local farm that runs, over TLS."""
    record_farm(locked_home, RECORDED_URL, locked_home / "tls" / "ca.pem")
    return locked_home


def test_the_running_farm_of_farm_home_is_called_with_its_admin_key_and_ca(
    running_home: Path,
) -> None:
    options = client_options(None, None, {"FARM_HOME": str(running_home)}, Path("/"))
    assert (options.url, options.api_key) == (RECORDED_URL, ADMIN_KEY)
    assert options.ca_file == str(running_home / "tls" / "ca.pem")


def test_cwd_may_be_given_as_text(running_home: Path) -> None:
    # It raised TypeError (str / str) from deep inside when FARM_HOME was set.
    options = client_options(None, None, {"FARM_HOME": str(running_home)}, "/")
    assert (options.url, options.api_key) == (RECORDED_URL, ADMIN_KEY)


def test_the_checkouts_farm_is_found_from_the_working_directory(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "envoy").mkdir(parents=True)
    (checkout / "envoy" / "envoy.yaml.j2").write_text("")
    (checkout / "buf.yaml").write_text("")
    (checkout / ".farm" / "run").mkdir(parents=True)
    (checkout / ".farm" / "admin-key").write_text(ADMIN_KEY)
    (checkout / "src").mkdir()
    with (checkout / ".farm" / "run" / "farm.lock").open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        record_farm(checkout / ".farm", "http://127.0.0.1:9080")
        options = client_options(None, None, {}, checkout / "src")
    assert (options.url, options.api_key, options.ca_file) == (
        "http://127.0.0.1:9080",
        ADMIN_KEY,
        "",
    )


def test_the_environment_wins_over_the_local_farm_and_arguments_over_both(
    running_home: Path,
) -> None:
    environ = {
        "FARM_HOME": str(running_home),
        "FARM_URL": "http://10.0.0.5:8080",
        "FARM_CA_FILE": "/etc/env-ca.pem",
    }
    # A URL the user named gets the local farm's admin key (no FARM_API_KEY here).
    named = client_options(None, None, environ, Path("/"))
    assert (named.url, named.api_key, named.ca_file) == (
        "http://10.0.0.5:8080",
        ADMIN_KEY,
        "/etc/env-ca.pem",
    )
    given = client_options(
        "https://10.0.0.6:8443", "bf_given", environ, Path("/"), ca_file="/etc/given-ca.pem"
    )
    assert (given.url, given.api_key, given.ca_file) == (
        "https://10.0.0.6:8443",
        "bf_given",
        "/etc/given-ca.pem",
    )


def test_a_named_key_and_ca_go_to_the_running_local_farm(running_home: Path) -> None:
    environ = {
        "FARM_HOME": str(running_home),
        "FARM_API_KEY": "bf_named",
        "FARM_CA_FILE": "/etc/env-ca.pem",
    }
    options = client_options(None, None, environ, Path("/"))
    assert (options.url, options.api_key, options.ca_file) == (
        RECORDED_URL,
        "bf_named",
        "/etc/env-ca.pem",
    )


def test_a_record_left_by_a_killed_launcher_is_ignored(farm_home: Path) -> None:
    (farm_home / "admin-key").write_text(ADMIN_KEY)
    environ = {"FARM_HOME": str(farm_home)}
    with subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(farm_home), "http://127.0.0.1:9080"],
        stdout=subprocess.PIPE,
        text=True,
    ) as launcher:
        try:
            assert launcher.stdout is not None and launcher.stdout.readline() == "up\n"
            assert client_options(None, None, environ, Path("/")).url == "http://127.0.0.1:9080"
        finally:
            launcher.send_signal(signal.SIGKILL)
    # Its record and its PID in the lock file stay; the lock went with it.
    assert edge_path(farm_home).exists()
    with pytest.raises(ValueError) as error:
        client_options(None, None, environ, Path("/"))
    assert str(error.value).startswith(
        f"no farm to call: FARM_URL is not set and {farm_home}/edge.json is left from a farm "
        "that has stopped"
    )
    assert "pass url=... or set FARM_URL" in str(error.value)
    # A key the user named may go to the default address, the admin key may not.
    named = client_options(None, "bf_named", environ, Path("/"))
    assert (named.url, named.api_key) == ("http://127.0.0.1:8080", "bf_named")


def test_the_admin_key_is_not_sent_to_the_default_address_when_its_farm_is_down(
    locked_home: Path,
) -> None:
    with pytest.raises(ValueError, match=r"edge\.json does not exist") as error:
        client_options(None, None, {"FARM_HOME": str(locked_home)}, Path("/"))
    assert "make run" in str(error.value)


def test_a_record_of_another_launcher_than_the_lock_holder_is_ignored(locked_home: Path) -> None:
    edge_path(locked_home).write_text(EdgeRecord(RECORDED_URL, None, 1).to_json())
    with pytest.raises(ValueError, match="left from a farm that has stopped"):
        client_options(None, None, {"FARM_HOME": str(locked_home)}, Path("/"))


def test_no_key_and_no_local_farm_says_what_to_set(farm_home: Path) -> None:
    with pytest.raises(ValueError) as error:
        client_options(None, None, {"FARM_HOME": str(farm_home)}, Path("/"))
    assert str(error.value) == (
        "no API key: pass api_key=... or set FARM_API_KEY, or start the farm (`make run`) "
        f"so that {farm_home}/admin-key exists"
    )


def test_outside_a_checkout_only_the_environment_counts(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as error:
        client_options(None, None, {}, tmp_path)
    assert str(error.value).startswith("no API key: pass api_key=... or set FARM_API_KEY (")
    assert f"no browserfarm checkout found from {tmp_path.resolve()} upward" in str(error.value)
    assert client_options(None, "bf_named", {}, tmp_path).url == "http://127.0.0.1:8080"


def test_a_tls_local_farm_is_called_over_tls_trusting_its_ca(
    locked_home: Path, tmp_path: Path
) -> None:
    tls = load_or_create_local_tls(tmp_path / "tls")
    assert tls.ca is not None
    refusals = Refusals()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    tasks_pb2_grpc.add_TaskServiceServicer_to_server(RefusingTasks(refusals), server)  # type: ignore[abstract]
    port = free_port()
    certificate = ((tls.key.read_bytes(), tls.cert.read_bytes()),)
    server.add_secure_port(f"127.0.0.1:{port}", grpc.ssl_server_credentials(certificate))
    server.start()
    try:
        record_farm(locked_home, f"https://127.0.0.1:{port}", tls.ca)
        with browserfarm.Client(environ={"FARM_HOME": str(locked_home)}, cwd=Path("/")) as farm:
            task = farm.submit({"url": "https://example.com", "content": {}})
    finally:
        server.stop(grace=None)
    assert task.id == "tsk_1"
    assert refusals.metadata[0]["authorization"] == f"Bearer {ADMIN_KEY}"


def test_without_fcntl_no_local_farm_is_found_and_a_named_farm_still_is(
    running_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on Windows: no fcntl, so no `farm up` and no lock to probe.
    monkeypatch.setitem(sys.modules, "fcntl", None)
    environ = {"FARM_HOME": str(running_home)}
    with pytest.raises(ValueError, match="left from a farm that has stopped"):
        client_options(None, None, environ, Path("/"))
    named = client_options("http://farm.test:8080", None, environ, Path("/"))
    assert (named.url, named.api_key) == ("http://farm.test:8080", ADMIN_KEY)
