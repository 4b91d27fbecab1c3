"""The storage service as farm_core.server runs it: SQL and S3 opened, servicers registered."""

from collections.abc import Mapping, Sequence

import grpc

from farm.storage.v1 import artifacts_pb2_grpc, ingest_pb2_grpc
from farm_core.identity import IdentityCodec
from farm_core.scopes import method_scopes
from farm_storage.api import ArtifactApi, IngestApi
from farm_storage.blobs import BlobStore
from farm_storage.gauges import StorageGauges
from farm_storage.library import ArtifactLibrary
from farm_storage.quotas import TenantQuotaSource
from farm_storage.settings import StorageSettings
from farm_storage.store import ArtifactStore

ARTIFACT_SERVICE = "farm.storage.v1.ArtifactService"
INGEST_SERVICE = "farm.storage.v1.ArtifactIngestService"


class StorageService:
    """Artifacts: ArtifactService for users, ArtifactIngestService for agents."""

    name = "storage"
    method_scopes: Mapping[str, str] = method_scopes(ARTIFACT_SERVICE, INGEST_SERVICE)

    def __init__(self, settings: StorageSettings) -> None:
        self._settings = settings
        self._store = ArtifactStore(settings.resolved_database_url())
        self._blobs = BlobStore(settings)
        self._quotas = (
            TenantQuotaSource(
                settings.auth_address,
                IdentityCodec(settings.resolved_identity_secret()),
                settings.quota_cache_seconds,
                tls=settings.internal_tls(),
            )
            if settings.auth_address
            else None
        )
        self._library = ArtifactLibrary(self._store, self._blobs, self._quotas)
        self._gauges = StorageGauges(self._store, settings.gauges_interval_seconds)

    async def start(self) -> None:
        try:
            await self._store.start()
            await self._blobs.start()
            self._gauges.start()
        except BaseException:
            await self.close()
            raise

    def register(self, server: grpc.aio.Server) -> Sequence[str]:
        artifacts_pb2_grpc.add_ArtifactServiceServicer_to_server(ArtifactApi(self._library), server)
        ingest_pb2_grpc.add_ArtifactIngestServiceServicer_to_server(
            IngestApi(self._library, self._settings.max_artifact_bytes), server
        )
        return [ARTIFACT_SERVICE, INGEST_SERVICE]

    async def drain(self, grace_seconds: float) -> None:
        # Storage takes no work of its own: the gRPC server's graceful stop lets
        # uploads and reads in flight finish.
        await self._gauges.stop()

    async def close(self) -> None:
        await self._gauges.stop()
        if self._quotas is not None:
            await self._quotas.close()
        await self._blobs.close()
        await self._store.close()
