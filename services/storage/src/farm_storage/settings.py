"""The storage service's settings, read from the environment (prefix FARM_STORAGE_)."""

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from farm_core.db import DatabaseUrl, async_database_url
from farm_core.grants import resolve_grant_public_key
from farm_core.settings import FarmSettings, Port, http_url_parts


def checked_s3_endpoint(endpoint: str) -> str:
    """`endpoint` unchanged if it is http(s)://host[:port] (S3's API has no path); else ValueError.

    The minio client refuses a path or a bad port only when storage builds it, in a
    traceback naming no setting, and takes any other scheme as http.
    """
    usage = "give S3's address alone, http://host:port or https://host"
    parts = http_url_parts(endpoint, usage)
    if parts.port == 0:
        raise ValueError(f"port 0; {usage}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"a path (the bucket is S3_BUCKET) or query is not allowed; {usage}")
    return endpoint


class StorageSettings(FarmSettings):
    """Where the storage service listens, its SQL database and its S3 bucket."""

    model_config = SettingsConfigDict(env_prefix="FARM_STORAGE_", extra="ignore", frozen=True)

    port: Port = Field(default=7102, description="gRPC port.")
    metrics_port: Port = Field(default=7202, description="Prometheus /metrics port; 0 is off.")
    gauges_interval_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How often the stored artifacts and bytes (by kind) are read for /metrics.",
    )
    database_url: DatabaseUrl = Field(
        default="",
        validation_alias=AliasChoices("FARM_STORAGE_DATABASE_URL", "DATABASE_URL"),
        description="SQL database; empty: a SQLite file under FARM_HOME/data.",
    )
    s3_endpoint: str = Field(
        default="http://127.0.0.1:7304",
        validation_alias=AliasChoices("FARM_STORAGE_S3_ENDPOINT", "S3_ENDPOINT"),
        description="S3 endpoint, http:// or https://.",
    )
    s3_access_key: str = Field(
        default="",
        validation_alias=AliasChoices("FARM_STORAGE_S3_ACCESS_KEY", "S3_ACCESS_KEY"),
    )
    s3_secret_key: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("FARM_STORAGE_S3_SECRET_KEY", "S3_SECRET_KEY"),
    )
    s3_bucket: str = Field(
        default="farm-artifacts",
        validation_alias=AliasChoices("FARM_STORAGE_S3_BUCKET", "S3_BUCKET"),
        description="Bucket the artifacts' bytes go to; made at start if missing.",
    )
    s3_region: str = Field(
        default="",
        validation_alias=AliasChoices("FARM_STORAGE_S3_REGION", "S3_REGION"),
        description="S3 region; empty lets the client ask the server.",
    )
    s3_threads: int = Field(
        default=8, ge=1, description="Threads that run the blocking S3 client's calls."
    )
    s3_timeout_seconds: float = Field(
        default=30.0, gt=0, description="How long one S3 request may wait for an answer."
    )
    s3_failure_log_seconds: float = Field(
        default=60.0,
        gt=0,
        description="While S3 keeps failing, storage logs a WARNING at its first failure, then "
        "at most one this often (with the latest error); and one line when S3 answers again.",
    )
    s3_ready_timeout_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How long start() retries making the bucket while S3 comes up.",
    )
    max_artifact_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1, description="Uploads larger than this are refused."
    )
    max_profile_bytes: int = Field(
        default=1024 * 1024,
        ge=1,
        description="A profile (cookies and local storage, JSON) larger than this is refused.",
    )
    max_profiles_per_tenant: int = Field(
        default=1000, ge=1, description="Profiles a tenant may keep; saving one more is refused."
    )
    max_baselines_per_tenant: int = Field(
        default=10000,
        ge=1,
        description="Baselines a tenant may keep; a screenshot of a new key past it fails.",
    )
    cache_eviction_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How long deleting an artifact waits for the scheduler to drop the cached "
        "result that names it; without an answer the delete fails (UNAVAILABLE) and nothing goes.",
    )
    grant_public_key: str | None = Field(
        default=None,
        description="PEM public half of the scheduler's grant key (FARM_SCHEDULER_GRANT_KEY): "
        "an upload is stored only with a grant it verifies, for the task or session and tenant "
        "the grant names, within the tenant's byte quota the grant carries; default: that of "
        "FARM_HOME/grant-key.",
    )
    unnamed_grants_tenant_wide: bool = Field(
        default=False,
        description="Let a grant older than names (signed by a scheduler that does not name a "
        "task's profile and baselines) use any profile and baseline of its tenant, as before; "
        "only for a rolling upgrade's window. Off: such a grant names none, and its baseline "
        "and profile calls are refused.",
    )

    def resolved_grant_public_key(self) -> str:
        """The public key upload grants are verified with (PEM)."""
        return resolve_grant_public_key(self.grant_public_key, self.home)

    @field_validator("s3_endpoint")
    @classmethod
    def _check_s3_endpoint(cls, value: str) -> str:
        return checked_s3_endpoint(value)

    def resolved_database_url(self) -> str:
        """The SQLAlchemy async URL of the database (SQLite under FARM_HOME by default)."""
        return async_database_url(self.database_url, self.database_path("storage"))
