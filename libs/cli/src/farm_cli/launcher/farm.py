"""The whole farm on one machine: NATS, SeaweedFS, the services, the agents, Envoy, Prometheus.

`LocalFarm(config).start()` brings them up in order (with `traces`, the trace sink
first), each as soon as what it needs is ready, and returns once all are ready;
`stop()` takes them down in reverse. While it runs, `supervise()` (`farm up`) or
`start_supervisor()` (tests, benches) restarts a process that crashes (supervisor.py),
restarts the agents `farm agent restart` names (agent_restarts.py) and, with
`config.autoscale`, grows and shrinks the agents (scaler.py). Tests drive it
in-process, and may kill, stop and start single processes to prove the farm survives
it. The processes' bookkeeping is in launched.py; the trace sink and Prometheus are
launched by observers.py. Once up, the farm's edge URL is in FARM_HOME/edge.json
(edge.py) until stop(), for the CLI and the SDK.
"""

import functools
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from browserfarm.local_farm import ADMIN_KEY_FILE, RUN_DIR
from farm_cli.launcher import infra
from farm_cli.launcher.agent_restarts import AgentRestarts
from farm_cli.launcher.config import FarmConfig
from farm_cli.launcher.credentials import load_or_create_s3_credentials, resolve_admin_key
from farm_cli.launcher.edge import remove_edge_record, write_edge_record
from farm_cli.launcher.envoy import (
    envoy_ready,
    envoy_spec,
    local_envoy_settings,
    write_envoy_config,
)
from farm_cli.launcher.health import service_ready
from farm_cli.launcher.launched import LaunchedProcesses
from farm_cli.launcher.lock import FarmLock, check_no_leftovers
from farm_cli.launcher.nats_users import nats_config_path, with_nats_users
from farm_cli.launcher.observers import launch_prometheus, launch_trace_sink
from farm_cli.launcher.processes import ManagedProcess
from farm_cli.launcher.scaler import AgentScaler, local_scaler
from farm_cli.launcher.services import (
    HOST,
    S3Target,
    ServiceLaunch,
    SharedSettings,
    agent_launches,
    console_launch,
    core_service_launches,
    mcp_launch,
)
from farm_cli.launcher.supervisor import Phase, Role, SupervisingThread, Supervisor
from farm_cli.launcher.tls import (
    TlsFiles,
    edge_tls_files,
    load_or_create_internal_tls,
)
from farm_core.grants import resolve_grant_key
from farm_core.identity_keys import resolve_private_key
from farm_core.nats_access import NatsAccess

NATS_TIMEOUT = 30.0
ENVOY_TIMEOUT = 30.0
# How long stop() waits for the supervising thread's current look to end.
SUPERVISOR_JOIN_TIMEOUT = 30.0

Known = TypeVar("Known")


def _ignore(_: str) -> None:
    """Drops a progress line."""


class LocalFarm:
    """The local farm's processes, started in order and stopped in reverse."""

    def __init__(self, config: FarmConfig, report: Callable[[str], None] = _ignore) -> None:
        self.config = config
        self._report = report
        self._lock = FarmLock(self.run_dir)
        self._stop_requested = False
        self.supervisor = Supervisor(config.restart_policy, report)
        self._supervising_thread = SupervisingThread(self._look)
        self.scaler: AgentScaler | None = None
        self._launched = LaunchedProcesses(
            self.supervisor, self.log_dir, self.run_dir, report, lambda: self._stop_requested
        )
        self.restarts = AgentRestarts(self.run_dir, self.supervisor, self._launched.by_name, report)
        self._started_seaweedfs = False
        self._admin_key: str | None = None
        self._shared: SharedSettings | None = None
        self._s3: S3Target | None = None
        self._tls: TlsFiles | None = None
        # FARM_HOME/edge.json tells the CLI and the SDK where this farm is, from start() to stop().
        self._wrote_edge_record = False

    @property
    def home(self) -> Path:
        """FARM_HOME: keys, data, logs and pid files."""
        return self.config.home

    @property
    def log_dir(self) -> Path:
        """Where each process's log goes, as <name>.log."""
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        """Where each process's PID goes, as <name>.pid, beside the launcher's lock."""
        return self.home / RUN_DIR

    @property
    def envoy_url(self) -> str:
        """Where clients reach the farm (HTTP/JSON and gRPC)."""
        return self.config.envoy_url

    @property
    def prometheus_url(self) -> str | None:
        """Where Prometheus answers (`observe`); None without it."""
        return f"http://{HOST}:{self.config.ports.prometheus}" if self.config.observe else None

    @property
    def traces_url(self) -> str | None:
        """Where the local trace sink takes spans (`traces`); None without it."""
        return self.config.trace_endpoint if self.config.traces else None

    @property
    def tls_files(self) -> TlsFiles | None:
        """Envoy's certificate and key (and the local CA, if it made them); None without TLS."""
        return self._tls

    @property
    def internal_tls_files(self) -> TlsFiles | None:
        """The services' mutual-TLS certificate, key and CA (on with TLS); None without."""
        return self._shared.internal_tls if self._shared is not None else None

    @property
    def admin_key_path(self) -> Path:
        """The file holding the bootstrap admin key (mode 0600)."""
        return self.home / ADMIN_KEY_FILE

    @property
    def admin_key(self) -> str:
        """The bootstrap admin key; known once start() has begun."""
        return _started(self._admin_key)

    @property
    def nats_url(self) -> str:
        """The NATS the farm uses (started here or given by NATS_URL)."""
        return _started(self._shared).nats_url

    @property
    def identity_key(self) -> str:
        """The private identity key (PEM) auth signs identities and credentials with."""
        return _started(self._shared).identity_key

    @property
    def s3(self) -> S3Target:
        """The S3 the storage service writes to (SeaweedFS here, or S3_ENDPOINT)."""
        return _started(self._s3)

    @property
    def processes(self) -> Mapping[str, ManagedProcess]:
        """The started processes by name, in start order."""
        return self._launched.by_name()

    def process(self, name: str) -> ManagedProcess:
        """The started process called `name` (nats, seaweedfs, auth, agent-1, envoy, ...)."""
        return self.processes[name]

    def __enter__(self) -> "LocalFarm":
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def claim_home(self) -> None:
        """Takes FARM_HOME's lock ahead of start() (FarmAlreadyRunning if held); stop() frees it."""
        self._lock.acquire()

    def start(self) -> None:
        """Starts every process, each awaited ready; on failure stops what it started.

        Raises FarmAlreadyRunning if another launcher holds FARM_HOME (touching
        nothing), StartupError naming the process that failed (with its log's tail),
        or FarmInterrupted if request_stop() was called meanwhile.
        """
        self._lock.acquire()
        try:
            check_no_leftovers(self.run_dir)
            self.config.check_project_files()
            self._shared = shared = self._prepare_home()
            config = self.config
            self._tls = edge_tls_files(config.tls, config.tls_cert, config.tls_key, config.tls_home)
            if self._tls is not None:
                # With TLS at the edge, the services also speak mutual TLS among themselves.
                internal = load_or_create_internal_tls(self.config.tls_home)
                self._shared = shared = replace(shared, internal_tls=internal)
            if self.config.nats_url is None:
                self._shared = shared = with_nats_users(shared, self.home, self.config.agents)
            # Launched, not yet ready: looked at together until ready (launched.py).
            starting: list[ManagedProcess] = []
            if self.config.traces:
                starting.append(launch_trace_sink(self._launched, self.config))
            self._s3 = s3 = self._launch_infrastructure(starting)
            # The services need NATS (and send spans to the sink) as they start; storage
            # waits for S3 itself, so SeaweedFS's slow start overlaps theirs.
            self._launched.await_ready(starting, "traces", "nats")
            if self.config.start_services:
                self._start_services(shared, s3, starting)
            starting.append(self._launch_envoy())
            if self.config.observe:
                starting.append(launch_prometheus(self._launched, self.config, self.home))
            self._launched.await_ready(starting)
            write_edge_record(self.home, self.envoy_url, self._tls.ca if self._tls else None)
            self._wrote_edge_record = True
        except BaseException:
            if self._launched.any_started:
                self._report("the farm did not start; stopping what was started")
            self.stop()
            raise

    def request_stop(self) -> None:
        """Asks a running start() or supervise() to return; safe from a signal handler."""
        self._stop_requested = True

    def supervise(self, interval: float = 0.5) -> None:
        """Watches the processes until request_stop(), restarting those that crash."""
        while not self._stop_requested:
            self._look()
            time.sleep(interval)

    def _look(self) -> None:
        """One look of the supervisor, then of the scaler."""
        self.supervisor.check()
        self.restarts.look()
        if self.scaler is not None:
            self.scaler.look()

    def start_supervisor(self, interval: float = 0.2) -> None:
        """Supervises in a daemon thread until stop(), as supervise() does in the foreground."""
        self._supervising_thread.start(interval)

    def kill(self, name: str, signum: int = signal.SIGKILL) -> None:
        """Sends `signum` to `name` only (not its children), as a crash would; none once ended."""
        self.process(name).send_signal(signum)

    def stop_process(self, name: str) -> None:
        """Stops `name` (SIGTERM, SIGKILL after its timeout) and keeps it down until started."""
        process = self.process(name)
        self.supervisor.hold(name)
        began = time.monotonic()
        code = process.stop()
        if name == "seaweedfs":
            infra.remove_seaweedfs_sockets(self.config.ports.seaweed_ports())
        self._report(f"{name} stopped on request ({time.monotonic() - began:.1f} s, code {code})")

    def start_process(self, name: str) -> None:
        """Starts `name` again with the same command, ports and data; returns once it is ready.

        For a process stopped by stop_process(), killed, or drained; raises
        StartupError if it does not become ready within its start timeout.
        """
        self._launched.start_again(name)

    def phase(self, name: str) -> Phase:
        """Where the process `name` stands for the supervisor (up, waiting to restart, …)."""
        return self.supervisor.phase(name)

    def stop(self) -> None:
        """Stops supervising, then every process in reverse start order (SIGKILL after timeouts)."""
        self._supervising_thread.stop(SUPERVISOR_JOIN_TIMEOUT)
        self.supervisor.forget()
        self.scaler = None
        self._launched.stop_all()
        if self._started_seaweedfs:
            infra.remove_seaweedfs_sockets(self.config.ports.seaweed_ports())
            self._started_seaweedfs = False
        self._stop_requested = False
        if self._wrote_edge_record:
            remove_edge_record(self.home)
            self._wrote_edge_record = False
        self._lock.release()

    def _prepare_home(self) -> SharedSettings:
        for folder in (self.home, self.log_dir, self.run_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._admin_key = resolve_admin_key(self.admin_key_path, self.config.admin_key)
        identity_key = self.config.identity_key or resolve_private_key(None, self.home)
        nats_url = self.config.nats_url or f"nats://{HOST}:{self.config.ports.nats}"
        grant_key = resolve_grant_key(None, self.home)
        return SharedSettings(nats_url=nats_url, identity_key=identity_key, grant_key=grant_key)

    def nats_access(self, user: str | None = None) -> NatsAccess:
        """How to reach the farm's NATS as `user` (scheduler, auth, storage, agent-N)."""
        return _started(self._shared).nats_access(user)

    def _launch_infrastructure(self, starting: list[ManagedProcess]) -> S3Target:
        """NATS and SeaweedFS (each unless given by URL), launched side by side into `starting`."""
        config = self.config
        if config.nats_url is None:
            nats_ports = config.ports.nats_ports()
            ready, wedged = infra.nats_probes(nats_ports, self.home / "nats")
            spec = infra.nats_spec(nats_ports, self.home / "nats", nats_config_path(self.home))
            starting.append(self._launched.launch(
                spec, ready, NATS_TIMEOUT, Role.INFRASTRUCTURE, wedged=wedged))  # fmt: skip
        if config.s3_endpoint is not None and config.s3_credentials is not None:
            return S3Target(config.s3_endpoint, config.s3_credentials, config.s3_bucket)
        s3, seaweedfs = self._launch_seaweedfs()
        starting.append(seaweedfs)
        return s3

    def _launch_seaweedfs(self) -> tuple[S3Target, ManagedProcess]:
        """SeaweedFS with the key pair kept under FARM_HOME/seaweedfs."""
        state = self.home / "seaweedfs"
        ports = self.config.ports
        credentials = load_or_create_s3_credentials(state / "credentials.json")
        s3 = S3Target(f"http://{HOST}:{ports.seaweed_s3}", credentials, self.config.s3_bucket)
        self._started_seaweedfs = True
        spec = infra.seaweedfs_spec(ports.seaweed_ports(), state, credentials)
        ready = functools.partial(infra.s3_ready, s3.endpoint, s3.credentials, s3.bucket)
        process = self._launched.launch(
            replace(spec, stop_timeout=self.config.seaweedfs_stop_timeout),
            ready,
            infra.SEAWEEDFS_START_TIMEOUT,
            Role.INFRASTRUCTURE,
            # weed leaves its gRPC sockets behind, and a new weed cannot bind them.
            before_start=functools.partial(infra.remove_seaweedfs_sockets, ports.seaweed_ports()),
        )
        return s3, process

    def _start_services(
        self, shared: SharedSettings, s3: S3Target, starting: list[ManagedProcess]
    ) -> None:
        """The services and the agents side by side.

        Returns once the services (not the agents) are ready. An agent that comes up
        before the scheduler has made the task streams waits for them (its start on NATS).
        """
        core = core_service_launches(self.config, shared, self.admin_key, s3)
        core.append(mcp_launch(self.config, shared))
        edge_ca = self._tls.ca if self._tls is not None else None
        core.append(console_launch(self.config, shared, edge_ca))
        starting += self._launch_services(core, Role.SERVICE, stop_together=False)
        agents = agent_launches(self.config, shared)
        initial = agents[: self.config.initial_agents]
        starting += self._launch_services(initial, Role.AGENT, stop_together=True)
        # Envoy comes next: a first health check that fails would keep a cluster
        # unhealthy for its interval (2 s).
        self._launched.await_ready(starting, *(launch.spec.name for launch in core))
        if self.config.autoscale is not None:
            self.scaler = local_scaler(
                self.config, self.config.autoscale, self._launched, self.supervisor, agents,
                self._readiness, self._report,
            )  # fmt: skip

    def _readiness(self, launch: ServiceLaunch) -> Callable[[], bool]:
        """Whether the service of `launch` serves (gRPC health, or /healthz over HTTP)."""
        return service_ready(launch.address, launch.health_path, self.internal_tls_files)

    def _launch_services(
        self, launches: list[ServiceLaunch], role: Role, *, stop_together: bool
    ) -> list[ManagedProcess]:
        return [
            self._launched.launch(
                launch.spec,
                self._readiness(launch),
                self.config.service_timeout,
                role,
                join_group=stop_together and index > 0,
            )
            for index, launch in enumerate(launches)
        ]

    def _launch_envoy(self) -> ManagedProcess:
        settings = local_envoy_settings(self.config, self._tls, self.internal_tls_files)
        config_path = write_envoy_config(
            self.config.envoy_template, settings, self.home / "envoy" / "envoy.yaml"
        )
        ready = functools.partial(envoy_ready, settings)
        return self._launched.launch(
            envoy_spec(config_path, self.config.envoy_log_flush_ms),
            ready,
            ENVOY_TIMEOUT,
            Role.INFRASTRUCTURE,
        )


def _started(value: Known | None) -> Known:
    """`value`, set once start() has begun; before, the farm has none to give."""
    if value is None:
        raise RuntimeError("the farm has not been started")
    return value
