"""What the storage service holds, as Prometheus gauges read from SQL every few seconds.

By artifact kind (a fixed set), never by tenant: a tenant's bytes are its quota's
business (GetTenant), not a metric label.
"""

from prometheus_client import Gauge

from farm_core.periodic import Periodic
from farm_storage.store import ArtifactStore

stored_artifacts = Gauge("farm_storage_artifacts", "Artifacts stored now, by kind.", ["kind"])
stored_bytes = Gauge(
    "farm_storage_stored_bytes", "Bytes of artifacts stored now, by kind.", ["kind"]
)


class StorageGauges:
    """Reads the artifacts' counts and bytes by kind every `interval_seconds`."""

    def __init__(self, store: ArtifactStore, interval_seconds: float) -> None:
        self._store = store
        self._seen: set[str] = set()
        self._loop = Periodic(
            "storage-gauges", self.refresh, interval_seconds, first_round_at_once=True
        )

    async def refresh(self) -> None:
        """Reads the totals now; a kind no longer stored shows 0."""
        totals = await self._store.stored_by_kind()
        self._seen |= set(totals)
        for kind in self._seen:
            count, size = totals.get(kind, (0, 0))
            stored_artifacts.labels(kind=kind).set(count)
            stored_bytes.labels(kind=kind).set(size)

    def start(self) -> None:
        """Starts reading."""
        self._loop.start()

    async def stop(self) -> None:
        """Stops reading."""
        await self._loop.stop()
