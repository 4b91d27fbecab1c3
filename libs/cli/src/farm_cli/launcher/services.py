"""How the launcher runs the farm's own services: `python -m farm_<name>` with their settings."""

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from farm_cli.launcher.config import FarmConfig
from farm_cli.launcher.infra import SEAWEEDFS_START_TIMEOUT, S3Credentials
from farm_cli.launcher.processes import ProcessSpec
from farm_cli.launcher.tls import TlsFiles
from farm_core.identity import CredentialRole, IdentitySigner
from farm_core.identity_keys import load_private_key, public_pem
from farm_core.nats_access import NatsAccess

HOST = "127.0.0.1"
# A service drains for up to FARM_GRACE_SECONDS (20 s by default) on SIGTERM.
SERVICE_STOP_TIMEOUT = 30.0
TRACE_ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
LOCAL_SINK_EXPORT_DELAY_MS = 500


@dataclass(frozen=True)
class S3Target:
    """The S3 endpoint, key pair and bucket the storage service writes to."""

    endpoint: str
    credentials: S3Credentials
    bucket: str


@dataclass(frozen=True)
class SharedSettings:
    """What one farm's services are given: NATS, the identity and grant keys, mutual-TLS files.

    Only auth gets the private identity key; every process gets its public half,
    and agents and the MCP service a credential signed with it. Only the scheduler gets
    the private grant key; storage gets its public half.
    """

    nats_url: str
    identity_key: str = field(repr=False)
    grant_key: str = field(repr=False)
    # The certificate every service serves and calls the others with; None: plaintext.
    internal_tls: TlsFiles | None = None
    # The embedded nats-server's users' passwords by user; empty: connect anonymously.
    nats_passwords: Mapping[str, str] = field(default_factory=dict, repr=False)
    # The CA of NATS's certificate; None: NATS without TLS.
    nats_ca: Path | None = None

    def public_key(self) -> str:
        """The public half of the identity key (PEM)."""
        return public_pem(load_private_key(self.identity_key))

    def nats_login(self, user: str) -> dict[str, str]:
        """NATS_USER and NATS_PASSWORD of `user`; {} when NATS has no users."""
        password = self.nats_passwords.get(user)
        if password is None:
            return {}
        return {"NATS_USER": user, "NATS_PASSWORD": password}

    def nats_access(self, user: str | None = None) -> NatsAccess:
        """How a client reaches this farm's NATS, as `user` (None: anonymously)."""
        password = self.nats_passwords.get(user) if user is not None else None
        return NatsAccess(self.nats_url, user if password else None, password, self.nats_ca)

    def grant_public_key(self) -> str:
        """The public half of the scheduler's grant key (PEM)."""
        return public_pem(load_private_key(self.grant_key))

    def credential(self, role: CredentialRole, name: str) -> str:
        """A credential for the farm process `name` in `role`, signed with the identity key."""
        return IdentitySigner(self.identity_key).credential(role, name)


@dataclass(frozen=True)
class ServiceLaunch:
    """One service process and the address its gRPC health answers on."""

    spec: ProcessSpec
    address: str
    # An HTTP service (the MCP service) answers GET <health_path> on `address` instead.
    health_path: str = ""


def _python_module(name: str, env: dict[str, str], port: int) -> ServiceLaunch:
    if env.get(TRACE_ENDPOINT_VARIABLE):
        # Tells one agent's spans from another's (all are the service farm-agent).
        env = {"OTEL_RESOURCE_ATTRIBUTES": f"service.instance.id={name}", **env}
    return ServiceLaunch(
        spec=ProcessSpec(
            name=name,
            argv=[sys.executable, "-m", f"farm_{name.split('-')[0]}"],
            env=env,
            stop_timeout=SERVICE_STOP_TIMEOUT,
        ),
        address=f"{HOST}:{port}",
    )


def common_env(config: FarmConfig, shared: SharedSettings) -> dict[str, str]:
    """The settings every service reads, over the config's extra service environment."""
    return {
        **trace_env(config),
        **config.service_env,
        "FARM_HOME": str(config.home),
        "NATS_URL": shared.nats_url,
        "FARM_IDENTITY_PUBLIC_KEY": shared.public_key(),
        "FARM_LOG_LEVEL": config.log_level,
        "PYTHONUNBUFFERED": "1",
        **_internal_tls_env(shared.internal_tls),
        **({"NATS_CA_FILE": str(shared.nats_ca)} if shared.nats_ca is not None else {}),
    }


def trace_env(config: FarmConfig) -> dict[str, str]:
    """The OTEL_* settings that send a service's spans where the farm's go; {} without."""
    endpoint = config.trace_endpoint
    if endpoint is None:
        return {}
    # The per-signal variable too: it wins over the general one in the SDK.
    env = {TRACE_ENDPOINT_VARIABLE: endpoint, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint}
    if config.traces:
        # The local sink is read by `farm task trace` right after a task: spans go
        # out every half second rather than every 5 s.
        env["OTEL_BSP_SCHEDULE_DELAY"] = str(LOCAL_SINK_EXPORT_DELAY_MS)
    return env


def _internal_tls_env(files: TlsFiles | None) -> dict[str, str]:
    if files is None or files.ca is None:
        return {}
    return {
        "FARM_INTERNAL_TLS_CERT": str(files.cert),
        "FARM_INTERNAL_TLS_KEY": str(files.key),
        "FARM_INTERNAL_TLS_CA": str(files.ca),
    }


def _database_env(config: FarmConfig) -> dict[str, str]:
    return {"DATABASE_URL": config.database_url} if config.database_url else {}


def core_service_launches(
    config: FarmConfig, shared: SharedSettings, admin_key: str, s3: S3Target
) -> list[ServiceLaunch]:
    """auth, storage and scheduler, in the order they start."""
    ports = config.ports
    common = {**common_env(config, shared), **_database_env(config)}
    return [
        _python_module(
            "auth",
            {
                **common,
                **shared.nats_login("auth"),
                "FARM_AUTH_PORT": str(ports.auth),
                "FARM_AUTH_CHECK_PORT": str(ports.auth_check),
                "FARM_AUTH_METRICS_PORT": str(ports.auth_metrics),
                "FARM_ADMIN_KEY": admin_key,
                "FARM_IDENTITY_KEY": shared.identity_key,
            },
            ports.auth,
        ),
        _python_module(
            "storage",
            {
                # It starts beside SeaweedFS: it waits for its bucket as long as the
                # launcher waits for S3 (service_env may say otherwise).
                "FARM_STORAGE_S3_READY_TIMEOUT_SECONDS": str(SEAWEEDFS_START_TIMEOUT),
                **common,
                **shared.nats_login("storage"),
                "FARM_STORAGE_PORT": str(ports.storage),
                "FARM_STORAGE_METRICS_PORT": str(ports.storage_metrics),
                # Storage stores an upload only with the scheduler's grant for its task.
                "FARM_STORAGE_GRANT_PUBLIC_KEY": shared.grant_public_key(),
                "S3_ENDPOINT": s3.endpoint,
                "S3_ACCESS_KEY": s3.credentials.access_key,
                "S3_SECRET_KEY": s3.credentials.secret_key,
                "S3_BUCKET": s3.bucket,
            },
            ports.storage,
        ),
        _python_module(
            "scheduler",
            {
                **common,
                **shared.nats_login("scheduler"),
                "FARM_SCHEDULER_PORT": str(ports.scheduler),
                "FARM_SCHEDULER_METRICS_PORT": str(ports.scheduler_metrics),
                "FARM_SCHEDULER_GRANT_KEY": shared.grant_key,
                # Sessions' cdpUrl and liveUrl point at the edge.
                "FARM_SCHEDULER_PUBLIC_URL": config.envoy_url,
                # Callbacks obey the agents' allow-list and stay away from every farm port.
                "FARM_SCHEDULER_FARM_ADDRESSES": farm_addresses(config),
                **_queue_gauges_env(config),
                **(
                    {"FARM_SCHEDULER_CALLBACK_ALLOW": config.agent_allow}
                    if config.agent_allow is not None
                    else {}
                ),
            },
            ports.scheduler,
        ),
    ]


def _queue_gauges_env(config: FarmConfig) -> dict[str, str]:
    """With autoscaling, the queue gauges it reads are refreshed as often as it looks."""
    if config.autoscale is None:
        return {}
    interval = str(config.autoscale.interval_seconds)
    return {"FARM_SCHEDULER_FLEET_GAUGES_INTERVAL_SECONDS": interval}


def trace_sink_launch(config: FarmConfig) -> ServiceLaunch:
    """The local trace sink (`--traces`): OTLP/gRPC on ports.traces, files under FARM_HOME."""
    address = f"{HOST}:{config.ports.traces}"
    return ServiceLaunch(
        spec=ProcessSpec(
            name="traces",
            argv=[
                sys.executable,
                "-m",
                "farm_cli.traces",
                "--listen",
                address,
                "--folder",
                str(config.traces_folder),
            ],
            stop_timeout=SERVICE_STOP_TIMEOUT,
        ),
        address=address,
    )


def mcp_launch(config: FarmConfig, shared: SharedSettings) -> ServiceLaunch:
    """The MCP service: /mcp behind Envoy, calling the scheduler and storage."""
    ports = config.ports
    launch = _python_module(
        "mcp",
        {
            **common_env(config, shared),
            # Auth renews its callers' identity tokens for it (it holds no signing key).
            "FARM_MCP_CREDENTIAL": shared.credential(CredentialRole.MCP, "mcp"),
            "FARM_MCP_AUTH_ADDRESS": f"{HOST}:{ports.auth}",
            "FARM_MCP_PORT": str(ports.mcp),
            "FARM_MCP_METRICS_PORT": str(ports.mcp_metrics),
            "FARM_MCP_SCHEDULER_ADDRESS": f"{HOST}:{ports.scheduler}",
            "FARM_MCP_STORAGE_ADDRESS": f"{HOST}:{ports.storage}",
            # Artifact links in the tools' answers point at the edge.
            "FARM_MCP_PUBLIC_URL": config.envoy_url,
        },
        ports.mcp,
    )
    return replace(launch, health_path="/healthz")


def farm_addresses(config: FarmConfig) -> str:
    """Every host:port of the farm, comma-separated: what pages and callbacks never reach."""
    return ",".join(f"{HOST}:{port}" for _, port in config.ports.all_ports(config.agents))


def console_launch(
    config: FarmConfig, shared: SharedSettings, edge_ca: Path | None
) -> ServiceLaunch:
    """The web console: /console/ behind Envoy, calling the farm back through Envoy.

    `edge_ca` is the CA of Envoy's certificate when the edge speaks TLS.
    """
    ports = config.ports
    env = {
        **common_env(config, shared),
        "FARM_CONSOLE_PORT": str(ports.console),
        "FARM_CONSOLE_METRICS_PORT": str(ports.console_metrics),
        "FARM_CONSOLE_FARM_ADDRESS": f"{HOST}:{ports.envoy}",
        # Auth's edge check then counts refused keys per browser, not per console.
        "FARM_CONSOLE_CREDENTIAL": shared.credential(CredentialRole.CONSOLE, "console"),
    }
    if edge_ca is not None:
        env["FARM_CONSOLE_FARM_CA_FILE"] = str(edge_ca)
    return replace(_python_module("console", env, ports.console), health_path="/healthz")


def agent_launches(config: FarmConfig, shared: SharedSettings) -> list[ServiceLaunch]:
    """agent-1 … agent-N (N: `agents`, the most), each with its own id and ports."""
    ports = config.ports
    launches = []
    for index in range(1, config.agents + 1):
        name = f"agent-{index}"
        own_env = config.agent_env[index - 1] if index <= len(config.agent_env) else {}
        env = {
            **common_env(config, shared),
            **own_env,
            **shared.nats_login(name),
            "FARM_AGENT_ID": name,
            "FARM_AGENT_CREDENTIAL": shared.credential(CredentialRole.AGENT, name),
            "FARM_AGENT_PORT": str(ports.agent(index)),
            "FARM_AGENT_METRICS_PORT": str(ports.agent_metrics(index)),
            "FARM_AGENT_SESSION_PORT": str(ports.agent_session(index)),
            # A session's json/version names its CDP socket at the edge.
            "FARM_AGENT_PUBLIC_URL": config.envoy_url,
            "FARM_AGENT_STORAGE_ADDRESS": f"{HOST}:{ports.storage}",
            # Every port of the farm, so that pages stay away from Envoy, the
            # services and NATS even where --allow-private opens loopback.
            "FARM_AGENT_FARM_ADDRESSES": farm_addresses(config),
            # The agents share this host's loopback: each refuses pages the others'
            # session browsers' DevTools ports too, which they note here.
            "FARM_AGENT_GUARDED_PORTS_DIR": str(config.home / "agents" / "guarded-ports"),
        }
        if config.agent_allow is not None:
            env["FARM_AGENT_ALLOW"] = config.agent_allow
        launches.append(_python_module(name, env, ports.agent(index)))
    return launches
