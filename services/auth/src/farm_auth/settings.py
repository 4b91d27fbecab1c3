"""The auth service's settings, read from the environment (prefix FARM_AUTH_)."""

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from farm_auth.keys import TENANT_PATTERN
from farm_auth.limits import LimitDefaults
from farm_core.db import DatabaseUrl, async_database_url
from farm_core.identity import carry_over_secret, load_or_create_secret
from farm_core.identity_keys import (
    PRIVATE_KEY_DESCRIPTION,
    load_private_key,
    public_pem,
    resolve_private_key,
)
from farm_core.key_limits import MAX_GRACE_SECONDS, MAX_RATE
from farm_core.live_tokens import LIVE_SECRET_DESCRIPTION, resolve_live_secret
from farm_core.retention import MAX_RETENTION_DAYS
from farm_core.settings import FarmSettings, Port


class AuthSettings(FarmSettings):
    """Where the auth service listens, its SQL database, and how it vouches for keys."""

    model_config = SettingsConfigDict(env_prefix="FARM_AUTH_", extra="ignore", frozen=True)

    port: Port = Field(default=7101, description="gRPC port.")
    check_port: Port = Field(
        default=7106,
        description="HTTP port of the edge's check (Envoy's ext_authz http_service); 0: any free.",
    )
    metrics_port: Port = Field(default=7201, description="Prometheus /metrics port; 0 is off.")
    database_url: DatabaseUrl = Field(
        default="",
        validation_alias=AliasChoices("FARM_AUTH_DATABASE_URL", "DATABASE_URL"),
        description="SQL database; empty: a SQLite file under FARM_HOME/data.",
    )
    admin_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("FARM_ADMIN_KEY"),
        description="The bootstrap admin key's secret; unset: no bootstrap key is made.",
    )
    key_pepper: SecretStr | None = Field(
        default=None,
        description="Secret API keys are hashed with (only auth holds it); default: "
        "FARM_HOME/key-pepper.",
    )
    identity_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("FARM_IDENTITY_KEY"),
        description=PRIVATE_KEY_DESCRIPTION,
    )
    live_token_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("FARM_LIVE_TOKEN_SECRET"),
        description=LIVE_SECRET_DESCRIPTION,
    )
    bootstrap_tenant: str = Field(
        default="default",
        description="The tenant of the bootstrap key; its admins may manage every tenant.",
    )
    identity_ttl_seconds: float = Field(
        default=60.0, gt=0, description="Lifetime of the identity tokens Check hands to Envoy."
    )
    identity_reuse_seconds: float = Field(
        default=5.0,
        ge=0,
        description=(
            "How long Check hands out the same identity token for the same key, at most half "
            "the tokens' lifetime; 0 signs one per request."
        ),
    )
    renewal_max_age_seconds: float = Field(
        default=900.0,
        gt=0,
        description=(
            "How long after a key was last shown at the edge the MCP service may still have "
            "its identity token renewed (RenewIdentity); at least the MCP service's idle "
            "timeout and tool time limit."
        ),
    )
    key_cache_seconds: float = Field(
        default=1.0,
        ge=0,
        description=(
            "How long Check trusts a key it verified (no hash, no lookup; never past the "
            "key's expiry); bounds how late a revoke bites."
        ),
    )
    key_cache_entries: int = Field(
        default=10_000, ge=0, description="How many looked-up keys Check remembers at most."
    )

    rate_limit_per_second: int = Field(
        default=50,
        ge=1,
        le=MAX_RATE,
        description="Requests a second one API key may make on average, unless set per key.",
    )
    rate_limit_burst: int = Field(
        default=100,
        ge=1,
        le=MAX_RATE,
        description="Requests one API key may make at once after a pause, unless set per key.",
    )
    rate_lease_seconds: float = Field(
        default=0.1,
        ge=0,
        le=1.0,
        description=(
            "How much of a key's rate (in seconds of it) a replica may take from the shared "
            "count at once and hold, unused ones lapsing after as long; 0: one request at a time."
        ),
    )
    rate_limit_keys: int = Field(
        default=100_000, ge=1, description="How many keys' rate buckets Check keeps at most."
    )
    max_queued_tasks: int = Field(
        default=10_000,
        ge=0,
        description="Queued tasks a tenant may have, unless set per tenant; 0 is unlimited.",
    )
    # Unlimited by default: a limited tenant's every task start, renewal and end is a
    # compare-and-set on its one entry in farm_tenant_slots.
    max_running_tasks: int = Field(
        default=0,
        ge=0,
        description=(
            "Running tasks a tenant may have at once, farm-wide, unless set per tenant; "
            "past it its tasks wait queued; 0 is unlimited."
        ),
    )
    max_artifact_bytes: int = Field(
        default=10 * 1024**3,
        ge=0,
        description="Artifact bytes a tenant may store, unless set per tenant; 0 is unlimited.",
    )
    max_open_sessions: int = Field(
        default=5,
        ge=0,
        description="Sessions a tenant may have open at once, unless set per tenant; "
        "0 is unlimited.",
    )
    view_token_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How long a spent live view token is remembered (at least the scheduler's "
        "FARM_SCHEDULER_VIEW_TOKEN_TTL_SECONDS), so it cannot be used twice.",
    )
    live_ticket_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How long the cookie a view token is exchanged for opens the live view.",
    )
    cdp_needs_script: bool = Field(
        default=False,
        description="Whether a session's CDP socket needs the scope `script` besides "
        "`sessions` (a CDP client can run any JavaScript in the session's pages). Off by "
        "default: the public API lets `sessions` attach.",
    )
    audit_gather_seconds: float = Field(
        default=0.25,
        ge=0,
        le=10,
        description=(
            "How long the audit writer lets records gather after a part-full batch, so they "
            "are stored in fewer, larger inserts; records reach the log up to this much later."
        ),
    )
    audit_ack_wait_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long NATS waits for the audit writer to store the records it fetched "
        "before delivering them again: after an auth crash, the records it held reach the log "
        "this much later (none are lost).",
    )
    audit_retention_days: int = Field(
        default=90,
        ge=0,
        le=MAX_RETENTION_DAYS,
        description="How long audit records are kept in the database; 0 keeps them for ever.",
    )
    rotation_grace_seconds: int = Field(
        default=86_400,
        ge=0,
        le=MAX_GRACE_SECONDS,
        description="How long a rotated key's old secret keeps working, unless the call says.",
    )
    failed_auth_limit: int = Field(
        default=20,
        ge=0,
        description="Refused keys one source address may send per window; 0 is unlimited.",
    )
    failed_auth_window_seconds: float = Field(
        default=60.0, gt=0, description="The window failed_auth_limit counts in."
    )
    failed_auth_block_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long an address over failed_auth_limit gets 429, even with a valid key.",
    )
    failed_auth_addresses: int = Field(
        default=100_000, ge=1, description="How many source addresses Check counts at most."
    )

    @field_validator("bootstrap_tenant")
    @classmethod
    def _valid_tenant(cls, tenant: str) -> str:
        if not TENANT_PATTERN.fullmatch(tenant):
            raise ValueError(f"must match {TENANT_PATTERN.pattern}")
        return tenant

    def bootstrap_tenant_name(self) -> str:
        """The bootstrap tenant: the refusals of operator-only calls name it."""
        return self.bootstrap_tenant

    def limit_defaults(self) -> LimitDefaults:
        """The rate limit and quotas of keys and tenants that set none of their own."""
        return LimitDefaults(
            rate_per_second=self.rate_limit_per_second,
            rate_burst=self.rate_limit_burst,
            max_queued_tasks=self.max_queued_tasks,
            max_running_tasks=self.max_running_tasks,
            max_artifact_bytes=self.max_artifact_bytes,
            max_open_sessions=self.max_open_sessions,
        )

    def resolved_database_url(self) -> str:
        """The SQLAlchemy async URL of the database (SQLite under FARM_HOME by default)."""
        return async_database_url(self.database_url, self.database_path("auth"))

    def resolved_key_pepper(self) -> str:
        """The pepper of the keys' hashes, from the environment or FARM_HOME/key-pepper.

        A local farm made before the pepper was its own secret (it has an auth
        database but no pepper file) hashed its keys with the identity secret file:
        that is carried over once, so those keys keep working.
        """
        if self.key_pepper is not None:
            return self.key_pepper.get_secret_value()
        pepper_file = self.home / "key-pepper"
        legacy = self.home / "identity-secret"
        older_farm = legacy.exists() and self.database_path("auth").exists()
        if not pepper_file.exists() and older_farm:
            return carry_over_secret(legacy, pepper_file)
        return load_or_create_secret(pepper_file)

    def resolved_identity_key(self) -> str:
        """The private identity key (PEM), from the environment or FARM_HOME/identity-key."""
        return resolve_private_key(self.identity_key, self.home)

    def resolved_identity_public_key(self) -> str:
        """The public half of the identity key auth signs with, unless given apart."""
        if self.identity_public_key is not None:
            return self.identity_public_key
        return public_pem(load_private_key(self.resolved_identity_key()))

    def resolved_live_token_secret(self) -> str:
        """The secret of live view tokens, shared with the scheduler alone."""
        return resolve_live_secret(self.live_token_secret, self.home)

    def resolved_admin_key(self) -> str | None:
        """The bootstrap admin key's secret, or None when it is unset or empty."""
        if self.admin_key is None:
            return None
        return self.admin_key.get_secret_value().strip() or None
