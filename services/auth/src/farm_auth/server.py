"""The auth service as farm_core.server runs it: SQL opened, bootstrap key made, servicers on."""

import datetime as dt
from collections.abc import Mapping, Sequence

import grpc

from farm.audit.v1 import audit_pb2_grpc
from farm.auth.v1 import auth_pb2_grpc, renewal_pb2_grpc
from farm_auth.api import AuthApi
from farm_auth.audit import AuditWriter
from farm_auth.audit_api import EDGE_SOURCE, AuditApi, AuditedAuthorizer
from farm_auth.audit_log import AuditLog
from farm_auth.authz import check_nats_pause
from farm_auth.bootstrap import ensure_bootstrap_key
from farm_auth.check_http import CheckServer
from farm_auth.console_clients import ConsoleClients
from farm_auth.credential_revocations import CredentialRevocations
from farm_auth.key_revocation_notices import KeyRevocationNotices
from farm_auth.keys import KeyRecord, SecretHasher, refusal
from farm_auth.ratelimit import KeyRateLimiter
from farm_auth.renewal import RenewalApi
from farm_auth.session_check import SessionAdmission
from farm_auth.session_routes import SessionRoutes
from farm_auth.settings import AuthSettings
from farm_auth.shared_limits import FailureRule, SharedLimits
from farm_auth.store import KeyStore
from farm_auth.verifier import KeyCache, KeyVerifier
from farm_core.audit_publisher import AuditPublisher
from farm_core.db import utcnow
from farm_core.failed_attempts import FailedAuthLimiter
from farm_core.identity import IdentitySigner, IdentityVerifier
from farm_core.key_revocations import REVOKED_KEY_TTL_SECONDS
from farm_core.key_validity import KeyValidity
from farm_core.revocations import RevokedCredentials
from farm_core.scopes import method_scopes
from farm_core.server import AUDIT_FLUSH_SECONDS

AUTH_SERVICE = "farm.auth.v1.AuthService"
AUDIT_SERVICE = "farm.audit.v1.AuditService"
RENEWAL_SERVICE = "farm.auth.v1.IdentityRenewalService"


class AuthService:
    """Tenants and keys, the edge's check (over HTTP), the audit log, MCP's token renewals."""

    name = "auth"
    method_scopes: Mapping[str, str] = method_scopes(AUTH_SERVICE, AUDIT_SERVICE, RENEWAL_SERVICE)

    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        self._store = KeyStore(
            settings.resolved_database_url(), settings.migration_lock_timeout_seconds
        )
        # A pepper of its own, held by auth alone: a stolen table cannot be used to
        # test guessed keys.
        self._hasher = SecretHasher(settings.resolved_key_pepper())
        self._verifier = KeyVerifier(
            self._store,
            self._hasher,
            KeyCache(settings.key_cache_seconds, settings.key_cache_entries),
            settings.bootstrap_tenant,
            settings.limit_defaults(),
        )
        self._codec = IdentitySigner(
            settings.resolved_identity_key(),
            settings.identity_ttl_seconds,
            settings.identity_reuse_seconds,
        )
        self._audit_log = AuditLog(self._store.engine)
        self._revocations = CredentialRevocations(
            self._store.engine, settings.nats(), settings.nats_replicas
        )
        self._key_revocations = KeyRevocationNotices(settings.nats(), settings.nats_replicas)
        self._audit_writer = AuditWriter(
            self._audit_log,
            settings.nats(),
            settings.audit_retention_days,
            settings.nats_replicas,
            settings.audit_gather_seconds,
            settings.audit_ack_wait_seconds,
        )
        nats_pause = check_nats_pause()
        self._session_routes = SessionRoutes(
            settings.nats(), settings.view_token_seconds, nats_pause, settings.nats_replicas
        )
        self._session_admission = SessionAdmission(
            self._session_routes,
            settings.resolved_live_token_secret(),
            settings.live_ticket_seconds,
            self._key_in_force,
            cdp_needs_script=settings.cdp_needs_script,
        )
        self._limits = SharedLimits(
            settings.nats(),
            KeyRateLimiter(settings.rate_limit_keys),
            FailedAuthLimiter(
                settings.failed_auth_limit,
                settings.failed_auth_window_seconds,
                settings.failed_auth_block_seconds,
                settings.failed_auth_addresses,
            ),
            FailureRule(
                settings.failed_auth_limit,
                settings.failed_auth_window_seconds,
                settings.failed_auth_block_seconds,
            ),
            nats_pause,
            replicas=settings.nats_replicas,
            lease_seconds=settings.rate_lease_seconds,
        )
        # Refusals at the edge never reach an interceptor: the check records them itself.
        self._edge_audit = AuditPublisher(
            settings.nats(), EDGE_SOURCE, settings.audit_queue_size, settings.audit_linger_seconds
        )
        self._check_server = CheckServer(
            AuditedAuthorizer(
                self._verifier,
                self._codec,
                self._limits,
                self._session_admission,
                ConsoleClients(
                    IdentityVerifier(
                        settings.resolved_identity_public_key(), self._revocations.revoked
                    )
                ),
                audit=self._edge_audit,
            ),
            settings.host,
            settings.check_port,
            settings.internal_ssl_server(),
        )

    async def _key_in_force(self, key_id: str, tenant: str, secret: str) -> KeyValidity | None:
        """Until when API key `key_id` of `tenant` and its secret `secret` work; None: gone.

        `secret` is a fingerprint ('' for none); None once the key is revoked or expired.
        """
        record = await self._store.get(key_id, tenant)
        if record is None or refusal(record, utcnow()) is not None:
            return None
        return record.validity_of(secret) if secret else record.validity()

    @property
    def revoked_credentials(self) -> RevokedCredentials:
        """The revoked credentials this replica refuses, read from SQL at start."""
        return self._revocations.revoked

    @property
    def check_port(self) -> int:
        """The port of the edge's check (HTTP), once started."""
        return self._check_server.port

    @property
    def limits(self) -> SharedLimits:
        """Check's rate and failed-key limits (farm-wide once NATS answers)."""
        return self._limits

    async def start(self) -> None:
        try:
            await self._store.start()
            admin_secret = self._settings.resolved_admin_key()
            # Keys whose secrets changed: a notice a stopped replica may not have sent,
            # and the bootstrap key, which a new FARM_ADMIN_KEY re-keys.
            changed: list[KeyRecord] = []
            if admin_secret is not None:
                changed.append(
                    await ensure_bootstrap_key(
                        self._store, self._settings.bootstrap_tenant, admin_secret, self._hasher
                    )
                )
            await self._revocations.start()
            # Revokes whose notice a stopped replica may not have sent: named again.
            since = utcnow() - dt.timedelta(seconds=REVOKED_KEY_TTL_SECONDS)
            changed += await self._store.rotated_since(since)
            self._key_revocations.start(
                await self._store.revoked_since(since), [key.secrets() for key in changed]
            )
            self._audit_writer.start()
            self._session_routes.start()
            self._limits.start()
            await self._check_server.start()
        except BaseException:
            await self.close()
            raise

    def register(self, server: grpc.aio.Server) -> Sequence[str]:
        auth_pb2_grpc.add_AuthServiceServicer_to_server(
            AuthApi(
                self._store,
                self._hasher,
                self._verifier,
                self._settings.bootstrap_tenant,
                self._settings.limit_defaults(),
                self._settings.rotation_grace_seconds,
                self._revocations,
                self._key_revocations,
            ),
            server,
        )
        settings = self._settings
        audit_pb2_grpc.add_AuditServiceServicer_to_server(
            AuditApi(self._audit_log, settings.bootstrap_tenant), server
        )
        renewal_pb2_grpc.add_IdentityRenewalServiceServicer_to_server(
            RenewalApi(
                self._store,
                self._codec,
                settings.bootstrap_tenant,
                settings.limit_defaults(),
                settings.renewal_max_age_seconds,
            ),
            server,
        )
        return [AUTH_SERVICE, AUDIT_SERVICE, RENEWAL_SERVICE]

    async def drain(self, grace_seconds: float) -> None:
        # Auth takes no work of its own: the gRPC server's graceful stop lets the
        # calls in flight finish.
        return

    async def close(self) -> None:
        await self._check_server.close()
        await self._session_routes.close()
        await self._revocations.close()
        await self._key_revocations.close()
        await self._limits.close()
        await self._edge_audit.close(AUDIT_FLUSH_SECONDS)
        await self._audit_writer.stop()
        await self._store.close()
