"""The auth service's settings, read from the environment (prefix FARM_AUTH_)."""

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from farm_auth.keys import TENANT_PATTERN
from farm_core.db import async_database_url
from farm_core.settings import FarmSettings


class AuthSettings(FarmSettings):
    """Where the auth service listens, its SQL database, and how it vouches for keys."""

    model_config = SettingsConfigDict(env_prefix="FARM_AUTH_", extra="ignore", frozen=True)

    port: int = Field(default=7101, description="gRPC port.")
    metrics_port: int = Field(default=7201, description="Prometheus /metrics port; 0 is off.")
    database_url: str = Field(
        default="",
        validation_alias=AliasChoices("FARM_AUTH_DATABASE_URL", "DATABASE_URL"),
        description="SQL database; empty: a SQLite file under FARM_HOME/data.",
    )
    admin_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("FARM_ADMIN_KEY"),
        description="The bootstrap admin key's secret; unset: no bootstrap key is made.",
    )
    bootstrap_tenant: str = Field(
        default="default",
        description="The tenant of the bootstrap key; its admins may manage every tenant.",
    )
    identity_ttl_seconds: float = Field(
        default=60.0, gt=0, description="Lifetime of the identity tokens Check hands to Envoy."
    )
    key_cache_seconds: float = Field(
        default=1.0,
        ge=0,
        description="How long Check trusts a key it looked up; bounds how late a revoke bites.",
    )
    key_cache_entries: int = Field(
        default=10_000, ge=0, description="How many looked-up keys Check remembers at most."
    )

    @field_validator("bootstrap_tenant")
    @classmethod
    def _valid_tenant(cls, tenant: str) -> str:
        if not TENANT_PATTERN.fullmatch(tenant):
            raise ValueError(f"must match {TENANT_PATTERN.pattern}")
        return tenant

    def resolved_database_url(self) -> str:
        """The SQLAlchemy async URL of the database (SQLite under FARM_HOME by default)."""
        return async_database_url(self.database_url, self.database_path("auth"))

    def resolved_admin_key(self) -> str | None:
        """The bootstrap admin key's secret, or None when it is unset or empty."""
        if self.admin_key is None:
            return None
        return self.admin_key.get_secret_value().strip() or None
