"""The console's settings, read from the environment (prefix FARM_CONSOLE_)."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from farm_core.settings import FarmSettings


class ConsoleSettings(FarmSettings):
    """Where the console listens, the edge it calls the farm through, and its cookie."""

    model_config = SettingsConfigDict(env_prefix="FARM_CONSOLE_", extra="ignore", frozen=True)

    port: int = Field(default=7105, description="HTTP port of /console/ and /healthz.")
    metrics_port: int = Field(default=7205, description="Prometheus /metrics port; 0 is off.")
    farm_address: str = Field(
        default="127.0.0.1:8080",
        description="host:port of the farm's edge (Envoy): every call goes through it with "
        "the signed-in user's own key, so the edge checks its scopes and limits.",
    )
    farm_ca_file: Path | None = Field(
        default=None,
        description="PEM CA of the edge's certificate: set, the console calls the edge over TLS.",
    )
    cookie_secure: bool = Field(
        default=True,
        description="Mark the sign-in cookie Secure (browsers keep it for https and for "
        "http://localhost and 127.0.0.1 only).",
    )
    refresh_seconds: float = Field(
        default=2.0, gt=0, le=60, description="How often live parts of a page are refreshed."
    )
    trace_url: str = Field(
        default="",
        description="Link to a task's trace waterfall, with {trace_id} in it (Jaeger: "
        "http://HOST:16686/trace/{trace_id}); empty: the trace id is shown without a link.",
    )
    call_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Time limit of one call to the farm."
    )
