"""Where the farm is and how to call it: arguments, else environment, else the local farm.

The local farm is the one `make run` (`farm up`) runs; see browserfarm.local_farm.
"""

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypedDict, cast

from browserfarm.local_farm import (
    DEFAULT_URL,
    Naming,
    edge_address,
    local_api_key,
    local_farm_location,
)
from browserfarm.transport import TRANSPORTS, TransportName

# What the SDK's errors ask for when it has no key, or no farm for the local farm's key.
ARGUMENT_NAMING = Naming(
    key="pass api_key=... or set FARM_API_KEY",
    url="pass url=... or set FARM_URL",
    named_url="a url you pass or a FARM_URL you set",
)


@dataclass(frozen=True)
class ClientOptions:
    """How a client calls the farm; every field has a default that suits one machine."""

    url: str = DEFAULT_URL
    """The farm's edge: http://host:port, https://host:port (TLS) or host:port."""
    api_key: str = ""
    """Sent as `authorization: Bearer <api key>` on every call."""
    timeout: float = 30.0
    """Seconds one ordinary call may take."""
    run_timeout: float = 300.0
    """Seconds run() and wait() may take in all, unless given per call."""
    max_attempts: int = 5
    """Calls made in all when the farm is UNAVAILABLE or rate-limits the caller."""
    backoff_seconds: float = 0.2
    """The first wait before a retry; each further wait doubles, up to max_backoff_seconds."""
    max_backoff_seconds: float = 10.0
    """The longest wait between two attempts, unless the farm's Retry-After asks for more."""
    max_retry_after: float = 60.0
    """A rate limit asking a longer wait than this is raised at once, not waited out."""
    ca_file: str = ""
    """A PEM file of the CA that signed an https farm's certificate (else the system's)."""
    transport: TransportName = "grpc"
    """"grpc", or "http" for HTTP/JSON (Envoy's transcoding) where gRPC does not pass."""

    @property
    def target(self) -> str:
        """host:port for gRPC (a URL without a port: its scheme's, 80 or 443)."""
        try:
            return edge_address(self.url)[0]
        except ValueError as error:
            raise ValueError(f"the farm's url {error}") from None

    @property
    def secure(self) -> bool:
        """Whether the farm is reached over TLS."""
        return edge_address(self.url)[1]


class ClientSettings(TypedDict, total=False):
    """The keywords a client takes besides url and api_key, typed for a type checker.

    ClientOptions' fields but url and api_key, and `environ` and `cwd`, which stand in
    for os.environ and the working directory where the farm and its key are looked up.
    """

    timeout: float
    run_timeout: float
    max_attempts: int
    backoff_seconds: float
    max_backoff_seconds: float
    max_retry_after: float
    ca_file: str
    transport: TransportName
    environ: Mapping[str, str] | None
    cwd: str | os.PathLike[str] | None


def client_options(
    url: str | None,
    api_key: str | None,
    environ: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    **settings: Any,
) -> ClientOptions:
    """Options from the arguments, else the environment, else the local farm while it runs.

    The environment: FARM_URL, FARM_API_KEY, FARM_CA_FILE, FARM_TRANSPORT. The local
    farm: FARM_HOME's, else the .farm of the checkout `cwd` is in, with its admin key
    and CA. That admin key goes only to that farm or to a url named by argument or
    FARM_URL; raises ValueError saying what to set when there is no key or no such farm.
    `settings` sets the other fields of ClientOptions (timeout=60, max_attempts=1, ...).
    """
    env = os.environ if environ is None else environ
    # A path as text too (cwd="/srv/app"), as os.chdir takes it.
    folder = Path.cwd() if cwd is None else Path(cwd)
    named_key = api_key or env.get("FARM_API_KEY", "").strip()
    named_ca = settings.pop("ca_file", None) or env.get("FARM_CA_FILE", "").strip() or None
    key = local_api_key(named_key, env, folder, ARGUMENT_NAMING)
    named_url = url or env.get("FARM_URL", "").strip()
    farm = local_farm_location(named_url, named_ca, bool(named_key), env, folder, ARGUMENT_NAMING)
    options = replace(
        ClientOptions(
            url=farm.url,
            api_key=key,
            ca_file=farm.ca_file or "",
            transport=cast(TransportName, env.get("FARM_TRANSPORT", "").strip() or "grpc"),
        ),
        **settings,
    )
    if options.transport not in TRANSPORTS:
        raise ValueError(f"transport: one of {', '.join(TRANSPORTS)}, not {options.transport!r}")
    _check_numbers(options)
    options.target  # noqa: B018 - refuses a malformed url now, not at the first call
    return options


# Each numeric setting: (its least value, whether that value is allowed, what it is).
_NUMBERS: Mapping[str, tuple[float, bool, str]] = {
    "timeout": (0, False, "seconds above 0"),
    "run_timeout": (0, False, "seconds above 0"),
    "max_attempts": (1, True, "a whole number of calls, at least 1"),
    "backoff_seconds": (0, True, "seconds, 0 or more"),
    "max_backoff_seconds": (0, True, "seconds, 0 or more"),
    "max_retry_after": (0, True, "seconds, 0 or more"),
}


def _check_numbers(options: ClientOptions) -> None:
    """ValueError naming the first numeric setting out of its range, or not a number.

    Else `timeout=0` or `timeout="30"` was taken, and every call failed later with a
    message about a per-call timeout never given, or a TypeError naming no setting.
    """
    for name, (least, least_allowed, wanted) in _NUMBERS.items():
        value = getattr(options, name)
        whole = name == "max_attempts"
        number = isinstance(value, int) if whole else isinstance(value, int | float)
        fits = (
            number
            and not isinstance(value, bool)
            and math.isfinite(value)
            and (value >= least if least_allowed else value > least)
        )
        if not fits:
            raise ValueError(f"{name}: {wanted}, not {value!r}")


def with_files_there(options: ClientOptions) -> ClientOptions:
    """`options`, once the files they name are found; ValueError naming the one that is not.

    Else a missing ca_file fails the first https call, with a FileNotFoundError that
    names no argument (and over HTTP no path either).
    """
    if options.ca_file and not Path(options.ca_file).is_file():
        raise ValueError(f"ca_file: no such file {options.ca_file!r}")
    return options
