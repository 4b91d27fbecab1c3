"""Storage's upload path: N artifacts stored, in process or through the storage service's RPC.

By default, ArtifactLibrary.store_upload in this one process against real SeaweedFS
and the storage service's own SQL (SQLite, or PostgreSQL with --database-url),
without gRPC in front: what the UploadArtifact RPC does after its bytes arrived.
Prints p50 wall time and CPU per upload (this process's, from /proc).

With --rpc, a farm of no agents (`LocalFarm`: NATS, SeaweedFS, auth, scheduler,
storage, Envoy as `farm up` runs them) and the agent's own uploader
(`farm_agent.work.uploader.StorageUploader`, its credential, a scheduler-signed grant
per task) calling storage's UploadArtifact, --concurrency at a time (with --read, each
artifact then read back with GetArtifactContent, as a client fetches its PNG): prints
p50 wall time and the storage process's CPU per upload (from /proc), the figure to
profile (its PID is printed on stderr, for `py-spy record --pid`).

Each upload names an attempt and the tenant has a byte quota, as a farm task's does;
with --stored N the tenant already stores N artifacts (rows written straight to SQL).

    .venv/bin/python bench/upload.py --n 300 [--database-url postgresql://…/db]
    .venv/bin/python bench/upload.py --rpc --n 400 --concurrency 2 [--stored 20000] [--read]
"""

import argparse
import asyncio
import datetime as dt
import hashlib
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import grpc
from process_cpu import tree_cpu_seconds
from pydantic import SecretStr
from sqlalchemy import insert

from farm.storage.v1 import artifacts_pb2, artifacts_pb2_grpc
from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import CapturedArtifact
from farm_agent.settings import AgentSettings
from farm_agent.work.uploader import ArtifactOwner, StorageUploader
from farm_cli.launcher import infra
from farm_cli.launcher.processes import ManagedProcess, free_ports, wait_until
from farm_core.db import create_engine
from farm_core.grants import GrantSigner, UploadGrant, resolve_grant_key
from farm_core.identity import IDENTITY_HEADER, CredentialRole, Identity, IdentitySigner
from farm_storage.attempts import AttemptFence
from farm_storage.blobs import BlobStore
from farm_storage.cache_eviction import CacheEviction
from farm_storage.ingest import ReceivedUpload
from farm_storage.library import ArtifactLibrary
from farm_storage.models import ArtifactRow
from farm_storage.settings import StorageSettings
from farm_storage.store import ArtifactStore

from harness import bounded, local_farm, progress_reporter

QUOTA = 10**12
DATA = os.urandom(20_000)  # about a 1280x800 PNG of a simple page
RUN = secrets.token_hex(4)  # fresh task ids per run, so a reused database replaces nothing


def _cpu_seconds() -> float:
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _upload(n: int) -> ReceivedUpload:
    return ReceivedUpload(
        tenant="bench",
        task_id=f"task-{RUN}-{n}",
        name="screenshot",
        kind="ARTIFACT_KIND_SCREENSHOT",
        content_type="image/png",
        data=DATA,
        sha256=hashlib.sha256(DATA).hexdigest(),
        fence=AttemptFence(work_sequence=n + 1, attempt=1),
    )


async def _store_rows(database_url: str, count: int) -> None:
    """`count` artifacts of the bench's tenant, as if stored earlier (no bytes in S3)."""
    if not count:
        return
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "id": f"art_{RUN}{number:016x}",
            "tenant": "bench",
            "task_id": f"earlier-{RUN}-{number}",
            "name": "screenshot",
            "kind": "ARTIFACT_KIND_SCREENSHOT",
            "content_type": "image/png",
            "size_bytes": len(DATA),
            "sha256": "0" * 64,
            "object_key": f"bench/earlier-{RUN}-{number}/screenshot",
            "create_time": now,
        }
        for number in range(count)
    ]
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(ArtifactRow), rows)
    finally:
        await engine.dispose()


async def _run(
    settings: StorageSettings, n: int, warmup: int, stored: int
) -> tuple[list[float], float]:
    store = ArtifactStore(settings.resolved_database_url())
    blobs = BlobStore(settings)
    await store.start()
    await blobs.start()
    await _store_rows(settings.resolved_database_url(), stored)
    library = ArtifactLibrary(store, blobs, CacheEviction(cast(Any, None), 1.0))
    try:
        for i in range(warmup):
            await library.store_upload(_upload(10**6 + i), QUOTA)
        walls: list[float] = []
        cpu = _cpu_seconds()
        for i in range(n):
            start = time.perf_counter()
            await library.store_upload(_upload(i), QUOTA)
            walls.append(time.perf_counter() - start)
        return walls, _cpu_seconds() - cpu
    finally:
        await blobs.close()
        await store.close()


Read = Callable[[str], Awaitable[object]]


async def _drive(
    uploader: StorageUploader,
    grants: GrantSigner,
    numbers: range,
    concurrency: int,
    read: Read | None,
) -> list[float]:
    """Uploads a task's artifact per number, `concurrency` at a time; the wall time of each.

    With `read`, each artifact is then read back by its id, as a client fetches its PNG.
    """
    walls: list[float] = []
    artifact = CapturedArtifact("screenshot", tasks_pb2.ARTIFACT_KIND_SCREENSHOT, "image/png", DATA)
    left = iter(numbers)

    async def worker() -> None:
        for number in left:
            task_id = f"task-{RUN}-{number}"
            # A task of its own, as the scheduler signs a RunTask's: one grant per task.
            grant = grants.sign(UploadGrant(task_id, "bench", QUOTA, names=frozenset()), 600)
            owner = ArtifactOwner("bench", task_id, grant, attempt=1, work_sequence=number + 1)
            start = time.perf_counter()
            ref = await uploader.upload(owner, artifact)
            if read is not None:
                await read(ref.id)
            walls.append(time.perf_counter() - start)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return walls


async def _run_rpc(
    settings: AgentSettings,
    grants: GrantSigner,
    reader_token: str,
    storage_pid: int,
    args: argparse.Namespace,
) -> tuple[list[float], float]:
    uploader = StorageUploader(settings)
    channel = grpc.aio.insecure_channel(settings.storage_address)
    artifacts = artifacts_pb2_grpc.ArtifactServiceStub(channel)

    async def read(artifact_id: str) -> object:
        # As Envoy forwards a user's call once auth has checked its key.
        request = artifacts_pb2.GetArtifactContentRequest(id=artifact_id)
        metadata = ((IDENTITY_HEADER, reader_token),)
        return await artifacts.GetArtifactContent(request, metadata=metadata, timeout=10)

    reading = read if args.read else None
    try:
        await _drive(uploader, grants, range(10**6, 10**6 + args.warmup), 1, reading)
        cpu = tree_cpu_seconds(storage_pid, {})
        walls = await _drive(uploader, grants, range(args.n), args.concurrency, reading)
        return walls, tree_cpu_seconds(storage_pid, {}) - cpu
    finally:
        await uploader.close()
        await channel.close()


def rpc_bench(args: argparse.Namespace) -> tuple[list[float], float]:
    """A farm of no agents; the agent's uploader stores --n artifacts through storage's RPC."""
    report = progress_reporter("upload")
    with local_farm(0, "upload", report) as farm:
        storage = farm.process("storage")
        report(f"storage PID {storage.pid}")
        signer = IdentitySigner(farm.identity_key)
        settings = AgentSettings(
            FARM_HOME=farm.home,
            credential=SecretStr(signer.credential(CredentialRole.AGENT, "bench")),
            storage_address=f"127.0.0.1:{farm.config.ports.storage}",
        )
        reader = signer.encode(Identity("bench", "key_bench", frozenset({"artifacts.read"})))
        grants = GrantSigner(resolve_grant_key(None, farm.home))
        database_url = StorageSettings(FARM_HOME=farm.home).resolved_database_url()
        asyncio.run(_store_rows(database_url, args.stored))
        return asyncio.run(_run_rpc(settings, grants, reader, storage.pid, args))


def main() -> None:
    """Stores --n uploads (in process, or with --rpc through storage), prints p50 wall and CPU."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--database-url", default="", help="PostgreSQL; SQLite when unset")
    parser.add_argument(
        "--rpc", action="store_true", help="through a farm's storage service, as agents upload"
    )
    parser.add_argument(
        "--concurrency", type=bounded(int, 1, 64), default=2, help="uploads at a time (--rpc)"
    )
    parser.add_argument(
        "--stored", type=int, default=0, help="artifacts the tenant stores before the uploads"
    )
    parser.add_argument(
        "--read", action="store_true", help="read each artifact back after its upload (--rpc)"
    )
    args = parser.parse_args()
    if args.rpc:
        walls, cpu = rpc_bench(args)
        print(
            f"uploads {args.n}{' each read back' if args.read else ''} through storage's RPC "
            f"at concurrency {args.concurrency}, {args.stored} stored before: "
            f"p50 {statistics.median(walls) * 1000:.2f} ms, storage CPU "
            f"{cpu / args.n * 1000:.2f} ms/upload, load {os.getloadavg()[0]:.1f}"
        )
        return
    with tempfile.TemporaryDirectory() as temp:
        state = Path(temp)
        ports = infra.SeaweedPorts(*free_ports(8))
        credentials = infra.S3Credentials("bench", secrets.token_hex(16))
        weed = ManagedProcess(infra.seaweedfs_spec(ports, state, credentials), state, state)
        endpoint = f"http://127.0.0.1:{ports.s3}"
        weed.start()
        try:
            wait_until(
                lambda: infra.s3_ready(endpoint, credentials, "bench"),
                timeout=90,
                what="SeaweedFS S3",
                process=weed,
                interval=0.3,
            )
            settings = StorageSettings(
                FARM_HOME=state / "home",
                FARM_STORAGE_DATABASE_URL=args.database_url,
                FARM_STORAGE_S3_ENDPOINT=endpoint,
                FARM_STORAGE_S3_ACCESS_KEY=credentials.access_key,
                FARM_STORAGE_S3_SECRET_KEY=credentials.secret_key,
                FARM_STORAGE_S3_BUCKET="bench",
            )
            walls, cpu = asyncio.run(_run(settings, args.n, args.warmup, args.stored))
        finally:
            weed.stop(timeout=0.5)
            infra.remove_seaweedfs_sockets(ports)
    print(
        f"uploads {args.n}, {args.stored} stored before: "
        f"p50 {statistics.median(walls) * 1000:.2f} ms, "
        f"CPU {cpu / args.n * 1000:.2f} ms/upload, load {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
