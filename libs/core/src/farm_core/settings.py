"""Settings every service shares, read from the environment with one-machine defaults."""

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from farm_core.identity import load_or_create_secret

DEFAULT_NATS_URL = "nats://127.0.0.1:7422"


class FarmSettings(BaseSettings):
    """The base of each service's settings: where state lives, NATS, the identity secret.

    Shared settings have fixed names (FARM_HOME, NATS_URL, ...); each service's own
    settings carry its prefix, e.g. FARM_SCHEDULER_PORT.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    home: Path = Field(
        default=Path(".farm"),
        validation_alias=AliasChoices("FARM_HOME"),
        description="Directory of the local farm's state: data, logs, keys.",
    )
    nats_url: str = Field(
        default=DEFAULT_NATS_URL,
        validation_alias=AliasChoices("NATS_URL"),
        description="NATS server(s), comma-separated.",
    )
    identity_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("FARM_IDENTITY_SECRET"),
        description="Secret identities are signed with; default: FARM_HOME/identity-secret.",
    )
    host: str = Field(
        default="127.0.0.1",
        validation_alias=AliasChoices("FARM_BIND_HOST"),
        description="Address the service's gRPC and metrics servers listen on.",
    )
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("FARM_LOG_LEVEL"))
    grace_seconds: float = Field(
        default=20.0,
        validation_alias=AliasChoices("FARM_GRACE_SECONDS"),
        description="On SIGTERM, how long in-flight work may take before it is cancelled.",
    )

    audit_queue_size: int = Field(
        default=10_000,
        ge=1,
        validation_alias=AliasChoices("FARM_AUDIT_QUEUE_SIZE"),
        description="Audit records a service holds while NATS is away; beyond, they are dropped.",
    )

    def resolved_identity_secret(self) -> str:
        """The identity secret, from the environment or the shared file under FARM_HOME."""
        if self.identity_secret is not None:
            return self.identity_secret.get_secret_value()
        return load_or_create_secret(self.home / "identity-secret")

    def database_path(self, service: str) -> Path:
        """The default SQLite file of `service` under FARM_HOME."""
        return self.home / "data" / f"{service}.db"
