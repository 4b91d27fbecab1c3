"""A whole farm spread over network-namespace hosts (tests/netns.py), for fault tests.

    10.213.0.1        the test: its pages, its clients, every readiness probe
    edge   .10        Envoy, in front of both api hosts and both storage hosts
    nats-1..3 .11-13  a NATS cluster whose routes log in; streams and buckets kept 3 times
    db     .21        a private PostgreSQL (Debian's binaries, as the postgres user)
    s3     .22        SeaweedFS
    api-1,2 .31,32    auth and scheduler replicas
    storage-1,2 .41,42 storage replicas
    agent-1..3 .61-63 agents whose hosts route only to NATS, storage and the test's pages

Processes are started with the launcher's own specs (services.py, infra.py, envoy.py)
prefixed by `ip netns exec`, given each host's address, and stopped by PID.
"""

import dataclasses
import functools
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from farm_cli.launcher.config import FarmConfig
from farm_cli.launcher.credentials import load_or_create_s3_credentials, resolve_admin_key
from farm_cli.launcher.envoy import (
    Endpoint,
    EnvoySettings,
    envoy_ready,
    envoy_spec,
    write_envoy_config,
)
from farm_cli.launcher.health import grpc_serving
from farm_cli.launcher.infra import (
    NatsPorts,
    SeaweedPorts,
    nats_ready,
    nats_spec,
    s3_ready,
    seaweedfs_spec,
)
from farm_cli.launcher.nats_cluster import (
    NatsCluster,
    load_or_create_route_credentials,
    write_cluster_config,
)
from farm_cli.launcher.processes import ManagedProcess, ProcessSpec, port_open, wait_until
from farm_cli.launcher.services import (
    S3Target,
    SharedSettings,
    agent_launches,
    core_service_launches,
)
from farm_core.grants import resolve_grant_key
from farm_core.identity_keys import resolve_private_key
from tests.netns import BRIDGE_ADDRESS, Host, Hosts

NATS = NatsPorts(client=4222, monitor=8222)
NATS_ROUTE_PORT = 6222
NATS_NODES = ("nats-1", "nats-2", "nats-3")
API_HOSTS = ("api-1", "api-2")
STORAGE_HOSTS = ("storage-1", "storage-2")
AGENT_HOSTS = ("agent-1", "agent-2", "agent-3")
AUTH_PORT, STORAGE_PORT, SCHEDULER_PORT = 7101, 7102, 7103
# Auth's edge check (HTTP), which Envoy's ext_authz calls on each auth replica.
AUTH_CHECK_PORT = 7106
ENVOY_PORT, ENVOY_ADMIN_PORT = 8080, 9901
POSTGRES_PORT = 5432
SEAWEED = SeaweedPorts(9333, 8081, 8888, 8333, 19333, 18081, 18888, 18333)
START_TIMEOUT = 90.0
POSTGRES_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


def layout(hosts: Hosts) -> None:
    """Makes the bridge and every host of the farm."""
    hosts.make_bridge()
    for index, name in enumerate(NATS_NODES):
        hosts.add(name, 11 + index)
    hosts.add("edge", 10)
    hosts.add("db", 21)
    hosts.add("s3", 22)
    for index, name in enumerate(API_HOSTS):
        hosts.add(name, 31 + index)
    for index, name in enumerate(STORAGE_HOSTS):
        hosts.add(name, 41 + index)
    reachable = [hosts[name].address for name in (*NATS_NODES, *STORAGE_HOSTS)]
    for index, name in enumerate(AGENT_HOSTS):
        hosts.add(name, 61 + index, reaches=[*reachable, BRIDGE_ADDRESS])


class NetnsFarm:
    """The farm's processes on `hosts`, by name; start() in order, stop() in reverse."""

    def __init__(self, hosts: Hosts, config: FarmConfig) -> None:
        self.hosts = hosts
        self.config = config
        self.processes: dict[str, ManagedProcess] = {}
        self._ready: dict[str, Callable[[], bool]] = {}
        self._postgres_dir: Path | None = None
        self.admin_key = ""
        self.agent_env: dict[str, dict[str, str]] = {}

    @property
    def home(self) -> Path:
        """Keys, logs and data of every process (one folder; hosts share the filesystem)."""
        return self.config.home

    @property
    def envoy_url(self) -> str:
        """Where clients reach the farm."""
        return f"http://{self.hosts['edge'].address}:{ENVOY_PORT}"

    @property
    def nats_url(self) -> str:
        """Every NATS node, comma-separated, as the services get it."""
        return ",".join(f"nats://{self.hosts[n].address}:{NATS.client}" for n in NATS_NODES)

    @property
    def database_url(self) -> str:
        """The private PostgreSQL, as the scheduler, auth and storage get it."""
        return f"postgresql+asyncpg://postgres@{self.hosts['db'].address}:{POSTGRES_PORT}/postgres"

    def start(self) -> None:
        """Starts every process, each group awaited ready; on failure stops what started."""
        try:
            self._start_infrastructure()
            self._start_services()
            self._start_envoy()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stops every process by PID, in reverse start order; removes PostgreSQL's folder."""
        infrastructure = ("postgres", "seaweedfs", *NATS_NODES)
        # The services drain side by side (each for up to FARM_GRACE_SECONDS), then the rest.
        services = [p for n, p in self.processes.items() if n not in infrastructure]
        for process in services:
            process.signal(signal.SIGTERM)
        for process in reversed(self.processes.values()):
            # At most 5 s each; SeaweedFS's shorter one is the test farm's (whole_farm_config).
            process.stop(timeout=min(5.0, process.spec.stop_timeout))
        if self._postgres_dir is not None:
            shutil.rmtree(self._postgres_dir, ignore_errors=True)
            self._postgres_dir = None

    def kill(self, name: str) -> None:
        """SIGKILLs process `name`'s whole group, as a crashed machine would."""
        self.processes[name].signal(signal.SIGKILL)
        self.processes[name].reap()

    def restart(self, name: str) -> None:
        """Starts a stopped or killed process again and waits until it is ready."""
        process = self.processes[name]
        if not process.alive():
            process.start()
        wait_until(self._ready[name], timeout=START_TIMEOUT, what=name, process=process)

    def stop_postgres(self) -> None:
        """PostgreSQL's fast shutdown (SIGINT: clients are disconnected, nothing is lost)."""
        process = self.processes["postgres"]
        process.signal(signal.SIGINT)
        process.stop(timeout=20)

    def _launch(self, host: Host, spec: ProcessSpec, ready: Callable[[], bool]) -> None:
        argv = host.run(spec.argv)
        process = ManagedProcess(
            dataclasses.replace(spec, argv=argv), self.home / "logs", self.home / "run"
        )
        self.processes[spec.name] = process
        self._ready[spec.name] = ready
        process.start()

    def _await(self, *names: str) -> None:
        for name in names:
            process = self.processes[name]
            wait_until(self._ready[name], timeout=START_TIMEOUT, what=name, process=process)

    def _start_infrastructure(self) -> None:
        routes = tuple(f"{self.hosts[n].address}:{NATS_ROUTE_PORT}" for n in NATS_NODES)
        route_login = load_or_create_route_credentials(self.home / "nats" / "routes.json")
        cluster = NatsCluster("farm", NATS_ROUTE_PORT, routes, route_login)
        for name in NATS_NODES:
            host = self.hosts[name]
            config = write_cluster_config(
                self.home / "nats" / f"{name}.json", cluster, host.address
            )
            spec = nats_spec(
                NATS, self.home / name, config, host=host.address, name=name, server_name=name
            )
            self._launch(host, spec, functools.partial(nats_ready, NATS, host.address))
        self._launch_postgres()
        credentials = load_or_create_s3_credentials(self.home / "seaweedfs" / "credentials.json")
        s3_host = self.hosts["s3"]
        self.s3 = S3Target(f"http://{s3_host.address}:{SEAWEED.s3}", credentials, "farm")
        spec = seaweedfs_spec(SEAWEED, self.home / "seaweedfs", credentials, s3_host.address)
        ready = functools.partial(s3_ready, self.s3.endpoint, credentials, self.s3.bucket)
        stop_timeout = self.config.seaweedfs_stop_timeout
        self._launch(s3_host, dataclasses.replace(spec, stop_timeout=stop_timeout), ready)
        self._await(*NATS_NODES, "postgres", "seaweedfs")

    def _launch_postgres(self) -> None:
        """initdb in a folder the postgres user owns (it refuses root), then postgres itself."""
        binaries = POSTGRES_BIN[-1]
        self._postgres_dir = folder = Path(tempfile.mkdtemp(prefix="bf13-pg-"))
        shutil.chown(folder, "postgres", "postgres")
        as_postgres = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
        subprocess.run(
            [*as_postgres, str(binaries / "initdb"), "-D", str(folder / "data"), "-A", "trust",
             "-U", "postgres"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        with (folder / "data" / "pg_hba.conf").open("a") as hba:
            hba.write("host all all 10.213.0.0/24 trust\n")
        db = self.hosts["db"]
        spec = ProcessSpec(
            name="postgres",
            argv=[*as_postgres, str(binaries / "postgres"), "-D", str(folder / "data"),
                  "-h", db.address, "-p", str(POSTGRES_PORT), "-k", str(folder)],
            stop_timeout=20.0,
        )  # fmt: skip
        self._launch(db, spec, functools.partial(port_open, db.address, POSTGRES_PORT))

    def _start_services(self) -> None:
        self.admin_key = resolve_admin_key(self.home / "admin-key", None)
        shared = SharedSettings(
            self.nats_url, resolve_private_key(None, self.home), resolve_grant_key(None, self.home)
        )
        config = dataclasses.replace(self.config, database_url=self.database_url)
        by_name = {launch.spec.name: launch for launch in
                   core_service_launches(config, shared, self.admin_key, self.s3)}  # fmt: skip
        # The first replicas migrate an empty database before the second ones start: two
        # replicas migrating one database at once race (alembic's version table).
        for index in range(len(API_HOSTS)):
            api = self.hosts[API_HOSTS[index]]
            for service, port in (("auth", AUTH_PORT), ("scheduler", SCHEDULER_PORT)):
                self._launch_service(api, by_name[service].spec, f"{service}-{index + 1}", port)
            host = self.hosts[STORAGE_HOSTS[index]]
            self._launch_service(
                host, by_name["storage"].spec, f"storage-{index + 1}", STORAGE_PORT
            )
            self._await(*(f"{name}-{index + 1}" for name in ("auth", "scheduler", "storage")))
        # The agents start once every replica is up: started beside the second ones,
        # an agent's first JetStream requests could time out while the cluster was
        # busy placing the second replicas' streams and buckets, and it exited.
        for index, launch in enumerate(agent_launches(self.config, shared)):
            host = self.hosts[AGENT_HOSTS[index]]
            # Every agent uploads to both storage replicas, round robin.
            storage = ",".join(
                f"{self.hosts[name].address}:{STORAGE_PORT}" for name in STORAGE_HOSTS
            )
            env = {
                key: value for key, value in launch.spec.env.items()
                if key not in ("FARM_AGENT_FARM_ADDRESSES",)
            }  # fmt: skip
            env |= {
                "FARM_AGENT_STORAGE_ADDRESS": storage,
                "FARM_AGENT_PORT": "7110",
                "FARM_AGENT_METRICS_PORT": "9110",
                "FARM_AGENT_SESSION_PORT": "7111",
            }
            self.agent_env[launch.spec.name] = env
            self._launch_service(host, dataclasses.replace(launch.spec, env=env), None, 7110)
        self._await(*AGENT_HOSTS)

    def _launch_service(self, host: Host, spec: ProcessSpec, name: str | None, port: int) -> None:
        env = {**spec.env, "FARM_BIND_HOST": host.address}
        prefix = spec.name.split("-")[0].upper()
        if prefix in ("AUTH", "STORAGE", "SCHEDULER"):
            env[f"FARM_{prefix}_PORT"] = str(port)
            env[f"FARM_{prefix}_METRICS_PORT"] = str(port + 2000)
        if prefix == "AUTH":
            env["FARM_AUTH_CHECK_PORT"] = str(AUTH_CHECK_PORT)
        spec = dataclasses.replace(spec, name=name or spec.name, env=env)
        ready = functools.partial(grpc_serving, f"{host.address}:{port}", None)
        self._launch(host, spec, ready)

    def _start_envoy(self) -> None:
        def replicas(names: tuple[str, ...], port: int) -> list[Endpoint]:
            return [Endpoint(self.hosts[name].address, port) for name in names]

        edge = self.hosts["edge"]
        settings = EnvoySettings(
            listen_port=ENVOY_PORT,
            admin_port=ENVOY_ADMIN_PORT,
            listen_address=edge.address,
            admin_address=edge.address,
            descriptor_path=self.config.descriptor_set,
            upstreams={
                "auth": replicas(API_HOSTS, AUTH_PORT),
                "scheduler": replicas(API_HOSTS, SCHEDULER_PORT),
                "storage": replicas(STORAGE_HOSTS, STORAGE_PORT),
            },
            auth_check_port=AUTH_CHECK_PORT,
        )
        path = write_envoy_config(
            self.config.envoy_template, settings, self.home / "envoy" / "envoy.yaml"
        )
        self._launch(edge, envoy_spec(path), functools.partial(envoy_ready, settings))
        self._await("envoy")
