"""Settings every service shares, read from the environment with one-machine defaults."""

import ssl
from pathlib import Path
from typing import Annotated
from urllib.parse import SplitResult, urlsplit

from pydantic import AfterValidator, AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from farm_core.identity_keys import IDENTITY_KEY_FILE, load_or_create_private_key, public_pem
from farm_core.logs import LogFormat
from farm_core.nats_access import NATS_USER_PATTERN, NatsAccess, checked_server_urls
from farm_core.runtime import EventLoop
from farm_core.setting_files import ca_file_problem, cert_chain_problem
from farm_core.transport import InternalTls

DEFAULT_NATS_URL = "nats://127.0.0.1:7422"

Port = Annotated[int, Field(ge=0, le=65535)]
"""A TCP port setting: 0 to 65535 (what 0 means is the setting's to say). Checked at
start: gRPC took 70000 as 70000 - 65536 = 4464 and said it served on 70000."""


def http_url_parts(url: str, usage: str) -> SplitResult:
    """`url` split if it is http(s)://host and its port parses; else ValueError (`usage` last)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError for a port out of range or not a number
    except ValueError as error:
        raise ValueError(f"bad port ({error}); {usage}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http:// or https:// URL; {usage}")
    return parts


def checked_public_url(url: str) -> str:
    """`url` unchanged if it is http(s)://host[:port][/path]; else ValueError.

    The edge's address as clients reach it: links handed to them are built from it,
    so one without its scheme (`farm.example.com`) made `ws:///farm.example.com/…`.
    """
    usage = "give the edge's address as clients reach it, http://host:port or https://host"
    parts = http_url_parts(url, usage)
    if parts.port == 0 or parts.query or parts.fragment:
        raise ValueError(f"not an edge address (port 0, a query or a fragment); {usage}")
    return url


PublicUrl = Annotated[str, AfterValidator(checked_public_url)]
"""A setting naming the edge as clients reach it (FARM_PUBLIC_URL, FARM_MCP_PUBLIC_URL)."""


def checked_host_port(address: str) -> str:
    """`address` unchanged if it is host:port (a name, an IPv4 or [IPv6] address); else ValueError.

    Such settings name a gRPC or HTTP peer without a scheme: `http://scheduler:7103`
    would be dialled as a host named `http`, and fail only at the first call.
    """
    host, separator, port = address.rpartition(":")
    if not separator or not host or "/" in address or "@" in host:
        raise ValueError("expected host:port, without a scheme or path (scheduler:7103)")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"port {port!r} is not in 1-65535")
    return address


HostPort = Annotated[str, AfterValidator(checked_host_port)]
"""A setting naming another service's host:port (FARM_MCP_SCHEDULER_ADDRESS, ...)."""

DEFAULT_MIGRATION_LOCK_TIMEOUT_SECONDS = 5.0
"""How long a migration's statement waits for a table lock on PostgreSQL (0: for ever)."""


class FarmSettings(BaseSettings):
    """The base of each service's settings: where state lives, NATS, the identity public key.

    Shared settings have fixed names (FARM_HOME, NATS_URL, ...); each service's own
    settings carry its prefix, e.g. FARM_SCHEDULER_PORT.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    home: Path = Field(
        default=Path(".farm"),
        validation_alias=AliasChoices("FARM_HOME"),
        description="Directory of the local farm's state: data, logs, keys.",
    )
    nats_url: str = Field(
        default=DEFAULT_NATS_URL,
        validation_alias=AliasChoices("NATS_URL"),
        description="NATS server(s), comma-separated.",
    )
    nats_user: str | None = Field(
        default=None,
        pattern=NATS_USER_PATTERN.pattern,
        validation_alias=AliasChoices("NATS_USER"),
        description=(
            "NATS user this process connects as (with NATS_PASSWORD); its replies come "
            "to the inbox prefix _INBOX.<user>. Unset: anonymous."
        ),
    )
    nats_password: str | None = Field(
        default=None,
        repr=False,
        validation_alias=AliasChoices("NATS_PASSWORD"),
        description="Password of NATS_USER.",
    )
    nats_ca_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("NATS_CA_FILE"),
        description="PEM CA that signs the NATS servers' certificates; set: NATS over TLS only.",
    )
    migration_lock_timeout_seconds: float = Field(
        default=DEFAULT_MIGRATION_LOCK_TIMEOUT_SECONDS,
        ge=0,
        validation_alias=AliasChoices("FARM_MIGRATION_LOCK_TIMEOUT_SECONDS"),
        description=(
            "On PostgreSQL, how long a migration at start waits for a table lock before "
            "the service exits (0: for ever), so that writes do not queue behind it."
        ),
    )
    nats_replicas: int = Field(
        default=1,
        ge=1,
        le=5,
        validation_alias=AliasChoices("FARM_NATS_REPLICAS"),
        description=(
            "Replicas of each JetStream stream and key-value bucket the farm creates "
            "(3 on a three-node NATS cluster)."
        ),
    )
    nats_start_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        validation_alias=AliasChoices("FARM_NATS_START_TIMEOUT_SECONDS"),
        description=(
            "How long a starting agent or scheduler keeps trying to connect to NATS and "
            "set up its streams, consumers and buckets before it exits."
        ),
    )
    nats_request_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        validation_alias=AliasChoices("FARM_NATS_REQUEST_TIMEOUT_SECONDS"),
        description=(
            "How long one JetStream request of an agent or scheduler (a look-up, a "
            "creation, a publish) waits for its answer."
        ),
    )
    identity_public_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("FARM_IDENTITY_PUBLIC_KEY"),
        description=(
            "PEM public key identities are verified with (auth signs them with its "
            "private half); default: that of FARM_HOME/identity-key."
        ),
    )
    host: str = Field(
        default="127.0.0.1",
        validation_alias=AliasChoices("FARM_BIND_HOST"),
        description="Address the service's gRPC and metrics servers listen on.",
    )
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("FARM_LOG_LEVEL"))
    log_format: LogFormat = Field(
        default=LogFormat.AUTO,
        validation_alias=AliasChoices("FARM_LOG_FORMAT"),
        description="Log lines as `json`, `text`, or `auto`: text on a terminal, JSON elsewhere.",
    )
    event_loop: EventLoop = Field(
        default=EventLoop.UVLOOP,
        validation_alias=AliasChoices("FARM_EVENT_LOOP"),
        description=(
            "Event loop the service runs on: `uvloop` (libuv, less CPU per message) or "
            "`asyncio` (the standard library's)."
        ),
    )
    grace_seconds: float = Field(
        default=20.0,
        validation_alias=AliasChoices("FARM_GRACE_SECONDS"),
        description="On SIGTERM, how long in-flight work may take before it is cancelled.",
    )

    audit_queue_size: int = Field(
        default=10_000,
        ge=1,
        validation_alias=AliasChoices("FARM_AUDIT_QUEUE_SIZE"),
        description="Audit records a service holds while NATS is away; beyond, they are dropped.",
    )
    audit_linger_seconds: float = Field(
        default=0.005,
        ge=0.0,
        le=1.0,
        validation_alias=AliasChoices("FARM_AUDIT_LINGER_SECONDS"),
        description=(
            "How long a service lets audit records gather before it publishes them as "
            "one group; 0 publishes each as soon as the previous group is acknowledged."
        ),
    )

    internal_tls_cert: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("FARM_INTERNAL_TLS_CERT"),
        description=(
            "PEM certificate chain this service serves and calls other services with "
            "(mutual TLS); with FARM_INTERNAL_TLS_KEY and FARM_INTERNAL_TLS_CA."
        ),
    )
    internal_tls_key: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("FARM_INTERNAL_TLS_KEY"),
        description="PEM private key of FARM_INTERNAL_TLS_CERT.",
    )
    internal_tls_ca: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("FARM_INTERNAL_TLS_CA"),
        description="PEM CA that signs the farm's internal certificates; callers must show one.",
    )

    @field_validator("nats_url")
    @classmethod
    def _check_nats_url(cls, value: str) -> str:
        return checked_server_urls(value)

    @model_validator(mode="after")
    def _internal_tls_complete(self) -> "FarmSettings":
        given = {
            "FARM_INTERNAL_TLS_CERT": self.internal_tls_cert,
            "FARM_INTERNAL_TLS_KEY": self.internal_tls_key,
            "FARM_INTERNAL_TLS_CA": self.internal_tls_ca,
        }
        missing = [name for name, value in given.items() if value is None]
        if 0 < len(missing) < len(given):
            raise ValueError(f"internal TLS needs all three settings; missing {', '.join(missing)}")
        return self

    def file_problems(self) -> list[str]:
        """What is wrong with the files the settings name, each naming its setting.

        Read at start (`farm_core.settings_load`), not when the settings are made, so
        that a configuration's settings can be checked on a machine without its files.
        """
        problems = []
        if self.nats_ca_file is not None:
            problems.append(ca_file_problem("NATS_CA_FILE", self.nats_ca_file))
        if self.internal_tls_cert is not None and self.internal_tls_key is not None:
            assert self.internal_tls_ca is not None  # checked with the other two
            problems.append(ca_file_problem("FARM_INTERNAL_TLS_CA", self.internal_tls_ca))
            problems.append(
                cert_chain_problem(
                    "FARM_INTERNAL_TLS_CERT",
                    self.internal_tls_cert,
                    "FARM_INTERNAL_TLS_KEY",
                    self.internal_tls_key,
                )
            )
        return [problem for problem in problems if problem is not None]

    def nats(self) -> NatsAccess:
        """How this process reaches NATS: servers, user, TLS CA."""
        return NatsAccess(self.nats_url, self.nats_user, self.nats_password, self.nats_ca_file)

    def internal_tls(self) -> InternalTls | None:
        """The certificates for mutual TLS between services, read now; None when not set."""
        if self.internal_tls_cert is None or self.internal_tls_key is None:
            return None
        assert self.internal_tls_ca is not None  # checked with the other two
        return InternalTls.load(self.internal_tls_cert, self.internal_tls_key, self.internal_tls_ca)

    def internal_ssl_server(self) -> ssl.SSLContext | None:
        """An SSL context for an HTTP endpoint inside the farm (mutual TLS); None when not set."""
        if self.internal_tls_cert is None or self.internal_tls_key is None:
            return None
        context = ssl.create_default_context(
            ssl.Purpose.CLIENT_AUTH, cafile=str(self.internal_tls_ca)
        )
        context.load_cert_chain(self.internal_tls_cert, self.internal_tls_key)
        context.verify_mode = ssl.CERT_REQUIRED
        return context

    def resolved_identity_public_key(self) -> str:
        """The identity public key (PEM): from the environment, or of FARM_HOME's key pair.

        The fallback is for one machine, where every process shares FARM_HOME; a
        host that holds only the public key (an agent's) must be given it.
        """
        if self.identity_public_key is not None:
            return self.identity_public_key
        return public_pem(load_or_create_private_key(self.home / IDENTITY_KEY_FILE))

    def bootstrap_tenant_name(self) -> str:
        """The bootstrap tenant, for refusals of operator-only calls; "" if not configured here."""
        return ""

    def database_path(self, service: str) -> Path:
        """The default SQLite file of `service` under FARM_HOME."""
        return self.home / "data" / f"{service}.db"
