"""Which farm the CLI calls, and with which key.

The key: FARM_API_KEY, else the admin key of the local farm (FARM_HOME/admin-key,
FARM_HOME defaulting to the checkout's .farm). The farm: FARM_URL, else the farm that
FARM_HOME's launcher is running (FARM_HOME/edge.json), else 127.0.0.1:8080 — but only
with a key the user named: FARM_HOME's admin key goes to FARM_HOME's farm or to a
FARM_URL the user set, never to an address guessed for it. The lookup is the SDK's
(browserfarm.local_farm), so `farm` and `browserfarm.Client()` find the same farm.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

from browserfarm.local_farm import (
    FarmNotRunning,
    KeyNotFound,
    edge_address,
    local_api_key,
    local_farm_location,
)
from farm_cli.console import CliError, NoApiKey


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
    try:
        address, secure = edge_address(url)
    except ValueError as error:
        raise CliError(f"{source} {error}") from None
    return FarmTarget(address, secure, ca_file)


def api_key(environ: Mapping[str, str], cwd: Path) -> str:
    """The caller's API key: FARM_API_KEY, else the local farm's admin key file."""
    try:
        return local_api_key(environ.get("FARM_API_KEY"), environ, cwd)
    except KeyNotFound as error:
        raise NoApiKey(str(error)) from error


def farm_target(environ: Mapping[str, str], cwd: Path) -> FarmTarget:
    """The farm the CLI calls, by the precedence in browserfarm.local_farm's docstring.

    Raises CliError when the key would be FARM_HOME's admin key and FARM_HOME's
    farm is not running: the key is not sent to an address it did not come with.
    """
    named_ca = environ.get("FARM_CA_FILE", "").strip() or None
    named_key = bool(environ.get("FARM_API_KEY"))
    try:
        found = local_farm_location(environ.get("FARM_URL"), named_ca, named_key, environ, cwd)
    except FarmNotRunning as error:
        raise CliError(str(error)) from error
    source = "FARM_URL" if found.record_path is None else str(found.record_path)
    return parse_farm_url(found.url, source, found.ca_file)
