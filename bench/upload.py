"""Storage's upload path alone: N artifacts stored through ArtifactLibrary.store_upload.

Real SeaweedFS and the storage service's own SQL (SQLite, or PostgreSQL with
--database-url), in this one process, without gRPC in front: what the UploadArtifact
RPC does after its bytes arrived. Each upload names an attempt and the tenant has a
byte quota, as a farm task's upload does. Prints p50 wall time and CPU per upload
(this process's, from /proc).

    .venv/bin/python bench/upload.py --n 300 [--database-url postgresql://…/db]
"""

import argparse
import asyncio
import hashlib
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from farm_cli.launcher import infra
from farm_cli.launcher.processes import ManagedProcess, free_ports, wait_until
from farm_storage.attempts import AttemptFence
from farm_storage.blobs import BlobStore
from farm_storage.cache_eviction import CacheEviction
from farm_storage.ingest import ReceivedUpload
from farm_storage.library import ArtifactLibrary
from farm_storage.settings import StorageSettings
from farm_storage.store import ArtifactStore

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


async def _run(settings: StorageSettings, n: int, warmup: int) -> tuple[list[float], float]:
    store = ArtifactStore(settings.resolved_database_url())
    blobs = BlobStore(settings)
    await store.start()
    await blobs.start()
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


def main() -> None:
    """Starts SeaweedFS, stores --n uploads, prints p50 wall and CPU per upload."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--database-url", default="", help="PostgreSQL; SQLite when unset")
    args = parser.parse_args()
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
            walls, cpu = asyncio.run(_run(settings, args.n, args.warmup))
        finally:
            weed.stop(timeout=0.5)
            infra.remove_seaweedfs_sockets(ports)
    print(
        f"uploads {args.n}: p50 {statistics.median(walls) * 1000:.2f} ms, "
        f"CPU {cpu / args.n * 1000:.2f} ms/upload, load {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
