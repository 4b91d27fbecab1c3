"""The whole farm on one machine: NATS, SeaweedFS, the services, the agents and Envoy.

`LocalFarm(config).start()` brings them up in order, each awaited ready; `stop()` takes
them down in reverse. `farm up` drives it from the command line; tests drive it
in-process.
"""

import functools
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from types import TracebackType

from farm_cli.launcher import infra
from farm_cli.launcher.config import FarmConfig
from farm_cli.launcher.credentials import load_or_create_s3_credentials, resolve_admin_key
from farm_cli.launcher.envoy import (
    SERVICE_CLUSTERS,
    Endpoint,
    EnvoySettings,
    envoy_ready,
    envoy_spec,
    write_envoy_config,
)
from farm_cli.launcher.health import grpc_serving
from farm_cli.launcher.lock import FarmLock, check_no_leftovers
from farm_cli.launcher.processes import ManagedProcess, ProcessSpec, wait_until
from farm_cli.launcher.services import (
    HOST,
    S3Target,
    ServiceLaunch,
    SharedSettings,
    agent_launches,
    core_service_launches,
)
from farm_core.identity import load_or_create_secret

NATS_TIMEOUT = 30.0
SEAWEEDFS_TIMEOUT = 90.0
ENVOY_TIMEOUT = 30.0


class FarmInterrupted(RuntimeError):
    """A stop was asked for while the farm was starting."""


def _ignore(_: str) -> None:
    """Drops a progress line."""


class LocalFarm:
    """The local farm's processes, started in order and stopped in reverse."""

    def __init__(self, config: FarmConfig, report: Callable[[str], None] = _ignore) -> None:
        self.config = config
        self._report = report
        self._lock = FarmLock(self.run_dir)
        # Processes in the order they were started, grouped as they are stopped:
        # a group's members get SIGTERM together, so agents drain side by side.
        self._stop_groups: list[list[ManagedProcess]] = []
        self._exits_reported: set[str] = set()
        self._stop_requested = False
        self._launched_at: dict[str, float] = {}
        self._started_seaweedfs = False
        self._admin_key: str | None = None
        self._shared: SharedSettings | None = None
        self._s3: S3Target | None = None

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
        return self.home / "run"

    @property
    def envoy_url(self) -> str:
        """Where clients reach the farm (HTTP/JSON and gRPC)."""
        return self.config.envoy_url

    @property
    def admin_key_path(self) -> Path:
        """The file holding the bootstrap admin key (mode 0600)."""
        return self.home / "admin-key"

    @property
    def admin_key(self) -> str:
        """The bootstrap admin key; known once start() has begun."""
        if self._admin_key is None:
            raise RuntimeError("the farm has not been started")
        return self._admin_key

    @property
    def nats_url(self) -> str:
        """The NATS the farm uses (started here or given by NATS_URL)."""
        if self._shared is None:
            raise RuntimeError("the farm has not been started")
        return self._shared.nats_url

    @property
    def identity_secret(self) -> str:
        """The secret the farm's processes sign and verify identities with."""
        if self._shared is None:
            raise RuntimeError("the farm has not been started")
        return self._shared.identity_secret

    @property
    def s3(self) -> S3Target:
        """The S3 the storage service writes to (SeaweedFS here, or S3_ENDPOINT)."""
        if self._s3 is None:
            raise RuntimeError("the farm has not been started")
        return self._s3

    @property
    def processes(self) -> Mapping[str, ManagedProcess]:
        """The started processes by name, in start order."""
        return {p.spec.name: p for group in self._stop_groups for p in group}

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

    def start(self) -> None:
        """Starts every process, each awaited ready; on failure stops what it started.

        Raises FarmAlreadyRunning if another launcher holds FARM_HOME (touching
        nothing), StartupError naming the process that failed (with its log's tail),
        or FarmInterrupted if request_stop() was called meanwhile.
        """
        self._lock.acquire()
        try:
            check_no_leftovers(self.run_dir)
            self._check_project_files()
            self._shared = shared = self._prepare_home()
            self._s3 = s3 = self._start_infrastructure()
            if self.config.start_services:
                self._start_services(shared, s3)
            self._start_envoy()
        except BaseException:
            if self._stop_groups:
                self._report("the farm did not start; stopping what was started")
            self.stop()
            raise

    def request_stop(self) -> None:
        """Asks a running start() or supervise() to return; safe from a signal handler."""
        self._stop_requested = True

    def supervise(self, interval: float = 0.5) -> None:
        """Watches the processes until request_stop(); reports each one that exits."""
        while not self._stop_requested:
            self.report_exits()
            time.sleep(interval)

    def report_exits(self) -> list[str]:
        """Reports processes that ended since the last call (with their log's tail)."""
        ended = []
        for name, process in self.processes.items():
            if name in self._exits_reported or process.alive():
                continue
            self._exits_reported.add(name)
            ended.append(name)
            self._report(
                f"{name} exited unexpectedly with code {process.exit_code()}; "
                f"last lines of {process.log_path}:\n{process.log_tail()}"
            )
        return ended

    def stop(self) -> None:
        """Stops every process in reverse start order, SIGKILL after each one's timeout."""
        while self._stop_groups:
            group = self._stop_groups.pop()
            began = time.monotonic()
            for process in reversed(group):
                process.signal(signal.SIGTERM)
            for process in reversed(group):
                process.stop()
            names = ", ".join(p.spec.name for p in reversed(group))
            self._report(f"{names} stopped ({time.monotonic() - began:.1f} s)")
        if self._started_seaweedfs:
            infra.remove_seaweedfs_sockets(self.config.ports.seaweed_ports())
            self._started_seaweedfs = False
        self._exits_reported.clear()
        self._stop_requested = False
        self._lock.release()

    def _check_project_files(self) -> None:
        """Fails before anything starts if Envoy's template or descriptor set is missing."""
        for path, remedy in (
            (self.config.envoy_template, "is this a browserfarm checkout?"),
            (self.config.descriptor_set, "run `make protos`"),
        ):
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing; {remedy}")

    def _prepare_home(self) -> SharedSettings:
        for folder in (self.home, self.log_dir, self.run_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._admin_key = resolve_admin_key(self.admin_key_path, self.config.admin_key)
        secret = self.config.identity_secret or load_or_create_secret(self.home / "identity-secret")
        nats_url = self.config.nats_url or f"nats://{HOST}:{self.config.ports.nats}"
        return SharedSettings(nats_url=nats_url, identity_secret=secret)

    def _start_infrastructure(self) -> S3Target:
        """NATS and SeaweedFS (each unless given by URL), started side by side."""
        config = self.config
        waits: list[tuple[ManagedProcess, Callable[[], bool], float]] = []
        if config.nats_url is None:
            nats_ports = config.ports.nats_ports()
            nats = self._launch(infra.nats_spec(nats_ports, self.home / "nats"))
            waits.append((nats, functools.partial(infra.nats_ready, nats_ports), NATS_TIMEOUT))
        if config.s3_endpoint is not None and config.s3_credentials is not None:
            s3 = S3Target(config.s3_endpoint, config.s3_credentials, config.s3_bucket)
        else:
            s3, seaweedfs = self._launch_seaweedfs()
            s3_ready = functools.partial(infra.s3_ready, s3.endpoint, s3.credentials, s3.bucket)
            waits.append((seaweedfs, s3_ready, SEAWEEDFS_TIMEOUT))
        for process, ready, timeout in waits:
            self._await_ready(process, ready, timeout)
        return s3

    def _launch_seaweedfs(self) -> tuple[S3Target, ManagedProcess]:
        """SeaweedFS with the key pair kept under FARM_HOME/seaweedfs."""
        state = self.home / "seaweedfs"
        ports = self.config.ports
        credentials = load_or_create_s3_credentials(state / "credentials.json")
        s3 = S3Target(f"http://{HOST}:{ports.seaweed_s3}", credentials, self.config.s3_bucket)
        self._started_seaweedfs = True
        spec = infra.seaweedfs_spec(ports.seaweed_ports(), state, credentials)
        process = self._launch(replace(spec, stop_timeout=self.config.seaweedfs_stop_timeout))
        return s3, process

    def _start_services(self, shared: SharedSettings, s3: S3Target) -> None:
        """auth, storage and scheduler side by side, then the agents side by side."""
        core = core_service_launches(self.config, shared, self.admin_key, s3)
        self._launch_services(core, stop_together=False)
        self._launch_services(agent_launches(self.config, shared), stop_together=True)

    def _launch_services(self, launches: list[ServiceLaunch], *, stop_together: bool) -> None:
        started = [
            (self._launch(launch.spec, join_group=stop_together and index > 0), launch.address)
            for index, launch in enumerate(launches)
        ]
        for process, address in started:
            ready = functools.partial(grpc_serving, address)
            self._await_ready(process, ready, self.config.service_timeout)

    def _start_envoy(self) -> None:
        ports = self.config.ports
        service_ports = {"auth": ports.auth, "storage": ports.storage, "scheduler": ports.scheduler}
        settings = EnvoySettings(
            listen_port=ports.envoy,
            admin_port=ports.envoy_admin,
            descriptor_path=self.config.descriptor_set,
            upstreams={name: [Endpoint(HOST, service_ports[name])] for name in SERVICE_CLUSTERS},
        )
        config_path = write_envoy_config(
            self.config.envoy_template, settings, self.home / "envoy" / "envoy.yaml"
        )
        envoy = self._launch(envoy_spec(config_path))
        self._await_ready(envoy, lambda: envoy_ready(settings), ENVOY_TIMEOUT)

    def _launch(self, spec: ProcessSpec, *, join_group: bool = False) -> ManagedProcess:
        """Starts `spec`, in a stop group of its own or in the last one."""
        process = ManagedProcess(spec, self.log_dir, self.run_dir)
        if not join_group or not self._stop_groups:
            self._stop_groups.append([])
        self._stop_groups[-1].append(process)
        self._launched_at[spec.name] = time.monotonic()
        process.start()
        return process

    def _await_ready(
        self, process: ManagedProcess, ready: Callable[[], bool], timeout: float
    ) -> None:
        name = process.spec.name

        def ready_unless_stopping() -> bool:
            if self._stop_requested:
                raise FarmInterrupted(f"stop requested while waiting for {name}")
            return ready()

        wait_until(ready_unless_stopping, timeout=timeout, what=name, process=process, interval=0.2)
        self._report(f"{name} ready ({time.monotonic() - self._launched_at[name]:.1f} s)")
