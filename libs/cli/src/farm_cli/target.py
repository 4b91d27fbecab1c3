"""Which farm the CLI calls, and with which key.

The key: FARM_API_KEY, else the admin key of the local farm (FARM_HOME/admin-key,
FARM_HOME defaulting to the checkout's .farm). The farm: FARM_URL, else the farm that
FARM_HOME's launcher is running (FARM_HOME/edge.json, see launcher/edge.py), else
127.0.0.1:8080 — but only with a key the user named: FARM_HOME's admin key goes to
FARM_HOME's farm or to a FARM_URL the user set, never to an address guessed for it.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

from farm_cli.console import CliError, NoApiKey
from farm_cli.launcher.config import ProjectNotFound, find_project_root
from farm_cli.launcher.edge import edge_path, is_running, read_edge_record

DEFAULT_FARM_URL = "127.0.0.1:8080"


@dataclass(frozen=True)
class FarmTarget:
    """Where the CLI's calls go: host:port, whether over TLS, the CA file it trusts."""

    address: str
    secure: bool
    # None: the system's roots.
    ca_file: str | None = None

    @property
    def url(self) -> str:
        """The farm's URL, http(s)://host:port."""
        return f"{'https' if self.secure else 'http'}://{self.address}"

    def credentials(self) -> grpc.ChannelCredentials:
        """TLS credentials trusting `ca_file` if set, else the system's roots."""
        if self.ca_file is None:
            return grpc.ssl_channel_credentials()
        try:
            return grpc.ssl_channel_credentials(root_certificates=Path(self.ca_file).read_bytes())
        except OSError as error:
            raise CliError(f"the CA file {self.ca_file!r} cannot be read: {error}") from error


def parse_farm_url(url: str, source: str = "FARM_URL", ca_file: str | None = None) -> FarmTarget:
    """The target of `url` (host:port or http(s)://host:port), named `source` in errors."""
    address = url.split("://", 1)[-1].rstrip("/")
    if not address or "/" in address:
        raise CliError(f"{source} must be host:port or http(s)://host:port, got {url!r}")
    return FarmTarget(address, url.startswith("https://"), ca_file)


def farm_home(environ: Mapping[str, str], cwd: Path) -> Path:
    """FARM_HOME, defaulting to the checkout's .farm; raises ProjectNotFound outside one."""
    if environ.get("FARM_HOME"):
        return cwd / environ["FARM_HOME"]
    return find_project_root(cwd) / ".farm"


def admin_key_path(environ: Mapping[str, str], cwd: Path) -> Path:
    """FARM_HOME/admin-key."""
    return farm_home(environ, cwd) / "admin-key"


def api_key(environ: Mapping[str, str], cwd: Path) -> str:
    """The caller's API key: FARM_API_KEY, else the local farm's admin key file."""
    if environ.get("FARM_API_KEY"):
        return environ["FARM_API_KEY"].strip()
    try:
        path = admin_key_path(environ, cwd)
    except ProjectNotFound as error:
        raise NoApiKey(f"no API key: set FARM_API_KEY ({error})") from error
    try:
        return path.read_text().strip()
    except FileNotFoundError as error:
        raise NoApiKey(
            f"no API key: set FARM_API_KEY, or start the farm (`make run`) so that {path} exists"
        ) from error


def farm_target(environ: Mapping[str, str], cwd: Path) -> FarmTarget:
    """The farm the CLI calls, by the precedence in this module's docstring.

    Raises CliError when the key would be FARM_HOME's admin key and FARM_HOME's
    farm is not running: the key is not sent to an address it did not come with.
    """
    named_ca = environ.get("FARM_CA_FILE", "").strip() or None
    if environ.get("FARM_URL"):
        return parse_farm_url(environ["FARM_URL"], ca_file=named_ca)
    try:
        home: Path | None = farm_home(environ, cwd)
    except ProjectNotFound:
        home = None
    record = read_edge_record(home) if home is not None else None
    if home is not None and record is not None and is_running(record, home):
        ca_file = named_ca or (str(record.ca_file) if record.ca_file else None)
        return parse_farm_url(record.url, str(edge_path(home)), ca_file)
    if environ.get("FARM_API_KEY"):
        return parse_farm_url(DEFAULT_FARM_URL, ca_file=named_ca)
    where = home if home is not None else "FARM_HOME"
    state = "is left from a farm that has stopped" if record else "does not exist"
    raise CliError(
        f"no farm to call: FARM_URL is not set and {where}/edge.json {state}, so the "
        f"local farm of {where} is not running. Start it (`make run`, or `farm up`), or "
        "set FARM_URL (the admin key in FARM_HOME goes only to FARM_HOME's own farm or "
        "to a FARM_URL you set)"
    )
