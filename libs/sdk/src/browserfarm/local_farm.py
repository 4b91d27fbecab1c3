"""Where the local farm is and with which key to call it, for the SDK and the `farm` CLI.

A farm started by `farm up` (`make run`) keeps its state in FARM_HOME, by default the
.farm of the browserfarm checkout the caller runs in. Its admin key is in
FARM_HOME/admin-key. While it runs, FARM_HOME/edge.json names its edge URL, the CA of
a `--tls` farm and the launcher that wrote it; the record is trusted only while that
launcher still holds FARM_HOME/run/farm.lock, so a file left by a killed launcher
names no farm. The launcher writes both files (farm_cli.launcher) with the names and
the record defined here.

The caller names a key and a farm (the CLI: FARM_API_KEY, FARM_URL, FARM_CA_FILE; the
SDK: its arguments, else the same variables), or not:
- the key: the named key, else FARM_HOME's admin key;
- the farm: the named URL (with the named CA), else FARM_HOME's running farm (its CA
  trusted unless a CA is named), else 127.0.0.1:8080, but only with a named key:
  FARM_HOME's admin key goes to FARM_HOME's own farm or to a URL the caller named,
  never to an address guessed for it.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8080"
"""The edge of a farm started on the default ports."""

# Files that mark the root of a browserfarm checkout.
PROJECT_MARKERS = (Path("envoy/envoy.yaml.j2"), Path("buf.yaml"))
# FARM_HOME's default, in the checkout.
HOME_IN_CHECKOUT = ".farm"
# In FARM_HOME: the admin key, the edge record, the run directory and its lock.
ADMIN_KEY_FILE = "admin-key"
EDGE_FILE = "edge.json"
RUN_DIR = "run"
LOCK_FILE = "farm.lock"


class ProjectNotFound(RuntimeError):
    """No browserfarm checkout contains the working directory."""


class KeyNotFound(ValueError):
    """No key was named and there is no local farm's admin key to use."""


class FarmNotRunning(ValueError):
    """No farm was named and FARM_HOME's farm is not running, so its admin key goes nowhere."""


def edge_address(url: str) -> tuple[str, bool]:
    """host:port of the farm's edge at `url`, and whether it speaks TLS.

    `url` is http://host:port, https://host:port or host:port; a scheme's URL without
    a port takes the scheme's (80, 443), as a browser would, not gRPC's 443 for both.
    ValueError for any other scheme, or a path after the address.
    """
    scheme, separator, rest = url.strip().partition("://")
    if not separator:
        scheme, rest = "", url.strip()
    address = rest.rstrip("/")
    if scheme.lower() not in ("", "http", "https") or not address or "/" in address:
        raise ValueError(f"must be host:port or http(s)://host:port, got {url!r}")
    secure = scheme.lower() == "https"
    if scheme and not address.rpartition(":")[2].isdigit():
        # Not "[::1]" either: its last part after a colon is no port.
        address += ":443" if secure else ":80"
    return address, secure


def find_project_root(start: Path) -> Path:
    """The nearest directory from `start` upward that holds the project's marker files."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if all((folder / marker).is_file() for marker in PROJECT_MARKERS):
            return folder
    markers = " and ".join(str(marker) for marker in PROJECT_MARKERS)
    raise ProjectNotFound(
        f"no browserfarm checkout found from {start} upward (looked for {markers}); "
        "run this inside the repository or set FARM_HOME"
    )


def farm_home(environ: Mapping[str, str], cwd: Path) -> Path:
    """FARM_HOME (relative to `cwd`), else the checkout's .farm; raises ProjectNotFound."""
    if environ.get("FARM_HOME"):
        return cwd / environ["FARM_HOME"]
    return find_project_root(cwd) / HOME_IN_CHECKOUT


@dataclass(frozen=True)
class EdgeRecord:
    """The edge URL of a FARM_HOME's farm, the CA its clients trust, and who wrote it."""

    url: str
    # The local CA of a `--tls` farm; None without TLS or with a certificate of one's own.
    ca_file: Path | None
    launcher_pid: int

    @property
    def tls(self) -> bool:
        """Whether the farm serves TLS only."""
        return self.url.startswith("https://")

    def to_json(self) -> str:
        """The record as FARM_HOME/edge.json holds it."""
        stored: dict[str, Any] = {
            "url": self.url,
            "tls": self.tls,
            "ca_file": str(self.ca_file) if self.ca_file is not None else None,
            "launcher_pid": self.launcher_pid,
        }
        return json.dumps(stored, indent=2) + "\n"


def edge_path(home: Path) -> Path:
    """FARM_HOME/edge.json."""
    return home / EDGE_FILE


def read_edge_record(home: Path) -> EdgeRecord | None:
    """`home`'s edge record as written, running or not; None if there is none (or unreadable)."""
    try:
        stored = json.loads(edge_path(home).read_text())
        return EdgeRecord(
            url=str(stored["url"]),
            ca_file=Path(stored["ca_file"]) if stored.get("ca_file") else None,
            launcher_pid=int(stored["launcher_pid"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def lock_holder(run_dir: Path) -> int | None:
    """The PID of the launcher holding `run_dir`'s lock; None if none holds it.

    Probes with a shared lock, let go at once: a launcher never waits for the lock.
    """
    try:
        # Imported here: the SDK also runs where there is no fcntl (Windows), and no
        # `farm up` either, so no local farm to find.
        import fcntl
    except ImportError:
        return None
    try:
        lock_file = (run_dir / LOCK_FILE).open()
    except FileNotFoundError:
        return None
    with lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = lock_file.read().strip()
            return int(text) if text.isdigit() else None
        fcntl.flock(lock_file, fcntl.LOCK_UN)
    return None


def is_running(record: EdgeRecord, home: Path) -> bool:
    """Whether the launcher that wrote `record` still runs `home`'s farm (holds its lock)."""
    return lock_holder(home / RUN_DIR) == record.launcher_pid


@dataclass(frozen=True)
class Naming:
    """How the caller names a key and a farm: what the errors that ask for them say."""

    key: str = "set FARM_API_KEY"
    url: str = "set FARM_URL"
    named_url: str = "a FARM_URL you set"


# The `farm` CLI's: it names a key and a farm by environment variables only.
ENVIRONMENT_NAMING = Naming()


def local_api_key(
    named_key: str | None,
    environ: Mapping[str, str],
    cwd: Path,
    naming: Naming = ENVIRONMENT_NAMING,
) -> str:
    """`named_key`, else FARM_HOME's admin key; raises KeyNotFound, saying what to set."""
    if named_key:
        return named_key.strip()
    try:
        path = farm_home(environ, cwd) / ADMIN_KEY_FILE
    except ProjectNotFound as error:
        raise KeyNotFound(f"no API key: {naming.key} ({error})") from error
    try:
        return path.read_text().strip()
    except FileNotFoundError as error:
        raise KeyNotFound(
            f"no API key: {naming.key}, or start the farm (`make run`) so that {path} exists"
        ) from error


@dataclass(frozen=True)
class FarmLocation:
    """The farm to call: its URL as found and the CA file to trust (None: the system's)."""

    url: str
    ca_file: str | None
    # FARM_HOME/edge.json when the URL is its running farm's; None when named or the default.
    record_path: Path | None = None


def local_farm_location(
    named_url: str | None,
    named_ca: str | None,
    named_key: bool,
    environ: Mapping[str, str],
    cwd: Path,
    naming: Naming = ENVIRONMENT_NAMING,
) -> FarmLocation:
    """The farm to call, by the precedence in this module's docstring.

    `named_key` says whether the key is one the caller named. Raises FarmNotRunning when
    the key would be FARM_HOME's admin key and FARM_HOME's farm is not running.
    """
    if named_url:
        return FarmLocation(named_url, named_ca)
    try:
        home: Path | None = farm_home(environ, cwd)
    except ProjectNotFound:
        home = None
    record = read_edge_record(home) if home is not None else None
    if home is not None and record is not None and is_running(record, home):
        ca_file = named_ca or (str(record.ca_file) if record.ca_file else None)
        return FarmLocation(record.url, ca_file, edge_path(home))
    if named_key:
        return FarmLocation(DEFAULT_URL, named_ca)
    where = home if home is not None else "FARM_HOME"
    state = "is left from a farm that has stopped" if record else "does not exist"
    raise FarmNotRunning(
        f"no farm to call: FARM_URL is not set and {where}/{EDGE_FILE} {state}, so the "
        f"local farm of {where} is not running. Start it (`make run`, or `farm up`), or "
        f"{naming.url} (the admin key in FARM_HOME goes only to FARM_HOME's own farm or "
        f"to {naming.named_url})"
    )
