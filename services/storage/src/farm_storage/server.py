"""The storage service as farm_core.server runs it: SQL and S3 opened, servicers registered."""

from collections.abc import Mapping, Sequence

import grpc

from farm.storage.v1 import (
    artifacts_pb2_grpc,
    baselines_pb2_grpc,
    ingest_pb2_grpc,
    profiles_pb2_grpc,
)
from farm_core.grants import GrantVerifier
from farm_core.scopes import method_scopes
from farm_storage.api import ArtifactApi, IngestApi
from farm_storage.baselines import BaselineLibrary
from farm_storage.blobs import BlobStore
from farm_storage.cache_eviction import CacheEviction
from farm_storage.ended_tasks import EndedTasks
from farm_storage.expiry import ArtifactExpiry
from farm_storage.gauges import StorageGauges
from farm_storage.grant_names import GrantNameCheck
from farm_storage.library import ArtifactLibrary
from farm_storage.nats_connection import StorageNats
from farm_storage.profiles import ProfileLibrary
from farm_storage.saved_api import BaselineApi, ProfileApi
from farm_storage.saved_store import BaselineTable, ProfileTable
from farm_storage.settings import StorageSettings
from farm_storage.store import ArtifactStore

ARTIFACT_SERVICE = "farm.storage.v1.ArtifactService"
INGEST_SERVICE = "farm.storage.v1.ArtifactIngestService"
BASELINE_SERVICE = "farm.storage.v1.BaselineService"
PROFILE_SERVICE = "farm.storage.v1.ProfileService"


class StorageService:
    """Artifacts, baselines, profiles: a service each for users; ArtifactIngestService, agents."""

    name = "storage"
    method_scopes: Mapping[str, str] = method_scopes(
        ARTIFACT_SERVICE, INGEST_SERVICE, BASELINE_SERVICE, PROFILE_SERVICE
    )

    def __init__(self, settings: StorageSettings) -> None:
        self._settings = settings
        self._store = ArtifactStore(
            settings.resolved_database_url(), settings.migration_lock_timeout_seconds
        )
        self._blobs = BlobStore(settings)
        self._grants = GrantVerifier(settings.resolved_grant_public_key())
        # One connection for both: requests to the scheduler, and its bucket of ended tasks.
        self._nats = StorageNats(settings.nats())
        self._eviction = CacheEviction(self._nats, settings.cache_eviction_timeout_seconds)
        self._ended_tasks = EndedTasks(self._nats)
        self._library = ArtifactLibrary(self._store, self._blobs, self._eviction, self._ended_tasks)
        self._expiry = ArtifactExpiry(self._nats, self._store.engine, self._blobs)
        self._gauges = StorageGauges(self._store, settings.gauges_interval_seconds)
        self._baselines = BaselineLibrary(
            BaselineTable(self._store.engine, settings.max_baselines_per_tenant),
            self._store,
            self._blobs,
        )
        self._profiles = ProfileLibrary(
            ProfileTable(self._store.engine, settings.max_profiles_per_tenant),
            self._blobs,
            settings.max_profile_bytes,
        )

    async def start(self) -> None:
        try:
            await self._store.start()
            await self._blobs.start()
            self._gauges.start()
            self._nats.start()
            self._ended_tasks.start()
            self._expiry.start()
        except BaseException:
            await self.close()
            raise

    def register(self, server: grpc.aio.Server) -> Sequence[str]:
        artifacts_pb2_grpc.add_ArtifactServiceServicer_to_server(ArtifactApi(self._library), server)
        ingest = IngestApi(
            self._library,
            self._settings.max_artifact_bytes,
            self._baselines,
            self._profiles,
            self._grants,
            GrantNameCheck(self._settings.unnamed_grants_tenant_wide),
        )
        ingest_pb2_grpc.add_ArtifactIngestServiceServicer_to_server(ingest, server)
        baselines_pb2_grpc.add_BaselineServiceServicer_to_server(
            BaselineApi(self._baselines), server
        )
        profiles_pb2_grpc.add_ProfileServiceServicer_to_server(ProfileApi(self._profiles), server)
        return [ARTIFACT_SERVICE, INGEST_SERVICE, BASELINE_SERVICE, PROFILE_SERVICE]

    async def drain(self, grace_seconds: float) -> None:
        # Storage takes no work of its own: the gRPC server's graceful stop lets
        # uploads and reads in flight finish.
        await self._gauges.stop()

    async def close(self) -> None:
        await self._gauges.stop()
        await self._ended_tasks.close()
        await self._expiry.close()
        await self._nats.close()
        await self._blobs.close()
        await self._store.close()
