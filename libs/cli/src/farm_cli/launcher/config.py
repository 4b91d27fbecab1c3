"""What the local farm runs with: the project root, FARM_HOME, ports, agents, external URLs."""

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# The checkout and FARM_HOME are found as the SDK finds the local farm (and re-exported).
from browserfarm.local_farm import HOME_IN_CHECKOUT
from browserfarm.local_farm import ProjectNotFound as ProjectNotFound
from browserfarm.local_farm import find_project_root as find_project_root
from farm_cli.launcher.autoscale import AutoscaleSettings
from farm_cli.launcher.infra import S3Credentials
from farm_cli.launcher.ports import MAX_AGENTS, FarmPorts
from farm_cli.launcher.supervisor import RestartPolicy

# What `--allow-private` lets agents reach: loopback and the private ranges.
PRIVATE_NETWORKS = (
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
)

DEFAULT_S3_BUCKET = "farm-artifacts"


class OptionsConflict(ValueError):
    """Settings that only go together, one given without the other: `farm up` exits 2."""


@dataclass(frozen=True)
class FarmConfig:
    """How to run the local farm: where, on which ports, with what given from outside."""

    root: Path
    home: Path
    ports: FarmPorts = field(default_factory=FarmPorts)
    # The agents (with `autoscale`: the most); ports and scrape targets cover them all.
    agents: int = 1
    # Scale the agents between autoscale.min_agents and `agents` (farm up --agents 1..3).
    autoscale: AutoscaleSettings | None = None
    # FARM_AGENT_ALLOW for the agents and FARM_SCHEDULER_CALLBACK_ALLOW for the
    # scheduler's callbacks (comma-separated); None leaves their default.
    agent_allow: str | None = None
    # Infrastructure given by URL instead of started here.
    nats_url: str | None = None
    s3_endpoint: str | None = None
    s3_credentials: S3Credentials | None = field(default=None, repr=False)
    s3_bucket: str = DEFAULT_S3_BUCKET
    database_url: str | None = field(default=None, repr=False)
    admin_key: str | None = field(default=None, repr=False)
    identity_key: str | None = field(default=None, repr=False)
    log_level: str = "INFO"
    # False starts only NATS, SeaweedFS and Envoy (tests of the launcher itself).
    start_services: bool = True
    # How long a service may take to report SERVING.
    service_timeout: float = 90.0
    # How long weed may drain after SIGTERM before SIGKILL. Its filer's graceful stop
    # always waits 15 s for metadata streams of its own (the S3 gateway's, its own
    # aggregator's) that end only with the process, and nothing of use happens in
    # that wait: what weed acknowledged is already in its files, which survive a kill.
    seaweedfs_stop_timeout: float = 2.0
    # More environment for every service process (auth, storage, scheduler, agents),
    # e.g. {"FARM_AGENT_ACK_WAIT_SECONDS": "5"}; what the launcher itself sets (ports,
    # ids, URLs, secrets) wins over it.
    service_env: Mapping[str, str] = field(default_factory=dict)
    # More environment for each agent on its own, the n-th entry for agent n (from 1),
    # over service_env (its id and ports still the launcher's): e.g.
    # ({"FARM_AGENT_REGION": "eu-central"}, {}) for two regions.
    agent_env: Sequence[Mapping[str, str]] = ()
    # How soon a crashed process is started again (supervise() / start_supervisor()).
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)
    # Envoy's listener serves TLS: with tls_cert/tls_key (PEM) if given, else with a
    # certificate from the local CA made under FARM_HOME/tls.
    tls: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Also run Prometheus on ports.prometheus, scraping every process (farm up --observe).
    observe: bool = False
    # Also run the local trace sink on ports.traces, every process sending it its spans
    # (farm up --traces); the files go under FARM_HOME/traces.
    traces: bool = False
    # Without `traces`: the OTLP/gRPC collector (http://host:port) every process and
    # Envoy send their spans to, from OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT; None: none.
    otlp_endpoint: str | None = None
    # How often Envoy sends its spans, in ms (FARM_ENVOY_TRACE_FLUSH_MS); None: Envoy's
    # default, every 5 s or once 5 spans wait.
    envoy_trace_flush_ms: int | None = None
    # How often Envoy writes out its access log lines, in ms; None: Envoy's default,
    # every 10 s or once 64 KiB wait.
    envoy_log_flush_ms: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.agents <= MAX_AGENTS:
            raise ValueError(f"agents must be between 0 and {MAX_AGENTS}, got {self.agents}")
        if len(self.agent_env) > self.agents:
            raise ValueError(
                f"agent_env has {len(self.agent_env)} entries for {self.agents} agents"
            )
        if self.autoscale is not None and self.autoscale.max_agents != self.agents:
            raise ValueError(
                f"autoscaling's most agents ({self.autoscale.max_agents}) must be `agents` "
                f"({self.agents})"
            )
        if self.s3_endpoint and self.s3_credentials is None:
            raise ValueError("S3_ENDPOINT is set: S3_ACCESS_KEY and S3_SECRET_KEY must be too")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise OptionsConflict(
                "FARM_ENVOY_TLS_CERT and FARM_ENVOY_TLS_KEY (--tls-cert, --tls-key) go together"
            )
        if self.tls_cert is not None and not self.tls:
            raise ValueError("a TLS certificate is given but TLS is off")

    @property
    def initial_agents(self) -> int:
        """How many agents start with the farm: all, or autoscaling's least."""
        return self.autoscale.min_agents if self.autoscale is not None else self.agents

    @property
    def envoy_template(self) -> Path:
        """The Envoy configuration template."""
        return self.root / "envoy" / "envoy.yaml.j2"

    @property
    def descriptor_set(self) -> Path:
        """The protos' descriptor set Envoy's transcoder reads (built by `make protos`)."""
        return self.root / "envoy" / "farm.binpb"

    def check_project_files(self) -> None:
        """Fails before anything starts if Envoy's template or descriptor set is missing."""
        for path, remedy in (
            (self.envoy_template, "is this a browserfarm checkout?"),
            (self.descriptor_set, "run `make protos`"),
        ):
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing; {remedy}")

    @property
    def prometheus_template(self) -> Path:
        """The Prometheus configuration template (`--observe`)."""
        return self.root / "deploy" / "prometheus" / "prometheus.yml.j2"

    @property
    def tls_home(self) -> Path:
        """Where the local CA and the server certificate made for `tls` live."""
        return self.home / "tls"

    @property
    def trace_endpoint(self) -> str | None:
        """Where the farm's processes send their spans: the local sink, a collector, or None."""
        if self.traces:
            return f"http://127.0.0.1:{self.ports.traces}"
        return self.otlp_endpoint

    @property
    def traces_folder(self) -> Path:
        """Where the local trace sink keeps its files (`traces`)."""
        return self.home / "traces"

    @property
    def envoy_url(self) -> str:
        """Where clients reach the farm."""
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.ports.envoy}"

    @classmethod
    def from_environment(
        cls,
        *,
        cwd: Path | None = None,
        environ: Mapping[str, str] | None = None,
        agents: int = 1,
        autoscale: AutoscaleSettings | None = None,
        allow_private: bool = False,
        ports: FarmPorts | None = None,
        start_services: bool = True,
        tls: bool = False,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        observe: bool = False,
        traces: bool = False,
    ) -> "FarmConfig":
        """The configuration `farm up` runs with: flags, then the environment, then defaults.

        With `autoscale`, `agents` is its most. `ports` replaces the ports from the
        environment (FARM_<WHAT>_PORT) as a whole.
        TLS is on with `tls`, or when a certificate is given (flags, else
        FARM_ENVOY_TLS_CERT and FARM_ENVOY_TLS_KEY). Without `traces`, spans go to
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT if set.
        """
        env = os.environ if environ is None else environ
        base = Path.cwd() if cwd is None else cwd
        root = find_project_root(base)
        home = Path(env["FARM_HOME"]) if env.get("FARM_HOME") else root / HOME_IN_CHECKOUT
        if not home.is_absolute():
            home = (base / home).resolve()
        s3_endpoint = env.get("S3_ENDPOINT") or None
        credentials = None
        if s3_endpoint and env.get("S3_ACCESS_KEY") and env.get("S3_SECRET_KEY"):
            credentials = S3Credentials(env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"])
        allow = ",".join(PRIVATE_NETWORKS) if allow_private else env.get("FARM_AGENT_ALLOW")
        cert = tls_cert or _path_from(env, "FARM_ENVOY_TLS_CERT", base)
        key = tls_key or _path_from(env, "FARM_ENVOY_TLS_KEY", base)
        return cls(
            root=root,
            home=home,
            ports=ports or FarmPorts.from_environment(env),
            agents=autoscale.max_agents if autoscale is not None else agents,
            autoscale=autoscale,
            agent_allow=allow or None,
            nats_url=env.get("NATS_URL") or None,
            s3_endpoint=s3_endpoint,
            s3_credentials=credentials,
            s3_bucket=env.get("S3_BUCKET") or DEFAULT_S3_BUCKET,
            database_url=env.get("DATABASE_URL") or None,
            admin_key=env.get("FARM_ADMIN_KEY") or None,
            identity_key=env.get("FARM_IDENTITY_KEY") or None,
            log_level=env.get("FARM_LOG_LEVEL") or "INFO",
            start_services=start_services,
            tls=tls or cert is not None or key is not None,
            tls_cert=cert,
            tls_key=key,
            observe=observe,
            traces=traces,
            otlp_endpoint=(
                env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                or None
            ),
            envoy_trace_flush_ms=_milliseconds_from(env, "FARM_ENVOY_TRACE_FLUSH_MS"),
        )


def _path_from(environ: Mapping[str, str], name: str, base: Path) -> Path | None:
    """The path in variable `name`, made absolute against `base`; None if unset."""
    text = environ.get(name, "").strip()
    return (base / text).resolve() if text else None


def _milliseconds_from(environ: Mapping[str, str], name: str) -> int | None:
    """The whole number of milliseconds (at least 1) in variable `name`; None if unset."""
    text = environ.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{name} must be a whole number of milliseconds, at least 1, got {text!r}")
    return int(text)
