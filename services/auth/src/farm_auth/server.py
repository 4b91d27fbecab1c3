"""The auth service as farm_core.server runs it: SQL opened, bootstrap key made, servicers on."""

from collections.abc import Mapping, Sequence

import grpc
from envoy.service.auth.v3 import external_auth_pb2_grpc

from farm.auth.v1 import auth_pb2_grpc
from farm_auth.api import AuthApi
from farm_auth.authz import AuthorizationApi
from farm_auth.bootstrap import ensure_bootstrap_key
from farm_auth.keys import SecretHasher
from farm_auth.settings import AuthSettings
from farm_auth.store import KeyStore
from farm_auth.verifier import KeyCache, KeyVerifier
from farm_core.identity import IdentityCodec
from farm_core.interceptors import ANY_IDENTITY, NO_IDENTITY
from farm_core.scopes import Scope

AUTH_SERVICE = "farm.auth.v1.AuthService"
AUTHORIZATION_SERVICE = "envoy.service.auth.v3.Authorization"


class AuthService:
    """Tenants and API keys (AuthService) and Envoy's key check (Authorization)."""

    name = "auth"
    method_scopes: Mapping[str, str] = {
        f"/{AUTH_SERVICE}/CreateApiKey": Scope.ADMIN,
        f"/{AUTH_SERVICE}/ListApiKeys": Scope.ADMIN,
        f"/{AUTH_SERVICE}/RevokeApiKey": Scope.ADMIN,
        f"/{AUTH_SERVICE}/WhoAmI": ANY_IDENTITY,
        # Envoy asks before anyone has an identity: this is where identities come from.
        f"/{AUTHORIZATION_SERVICE}/Check": NO_IDENTITY,
    }

    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        identity_secret = settings.resolved_identity_secret()
        self._store = KeyStore(settings.resolved_database_url())
        # The identity secret doubles as the hashes' pepper: a stolen table alone
        # cannot be used to test guessed keys.
        self._hasher = SecretHasher(identity_secret)
        self._verifier = KeyVerifier(
            self._store,
            self._hasher,
            KeyCache(settings.key_cache_seconds, settings.key_cache_entries),
            settings.bootstrap_tenant,
        )
        self._codec = IdentityCodec(identity_secret, settings.identity_ttl_seconds)

    async def start(self) -> None:
        try:
            await self._store.start()
            admin_secret = self._settings.resolved_admin_key()
            if admin_secret is not None:
                await ensure_bootstrap_key(
                    self._store, self._settings.bootstrap_tenant, admin_secret, self._hasher
                )
        except BaseException:
            await self.close()
            raise

    def register(self, server: grpc.aio.Server) -> Sequence[str]:
        auth_pb2_grpc.add_AuthServiceServicer_to_server(
            AuthApi(self._store, self._hasher, self._verifier, self._settings.bootstrap_tenant),
            server,
        )
        external_auth_pb2_grpc.add_AuthorizationServicer_to_server(
            AuthorizationApi(self._verifier, self._codec), server
        )
        return [AUTH_SERVICE, AUTHORIZATION_SERVICE]

    async def drain(self, grace_seconds: float) -> None:
        # Auth takes no work of its own: the gRPC server's graceful stop lets the
        # calls in flight finish.
        return

    async def close(self) -> None:
        await self._store.close()
