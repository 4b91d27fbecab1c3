"""The MCP service's settings, read from the environment (prefix FARM_MCP_)."""

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from farm_core.settings import FarmSettings, HostPort, Port, PublicUrl


class McpSettings(FarmSettings):
    """Where the MCP service listens, the services it calls, and its tools' limits."""

    model_config = SettingsConfigDict(env_prefix="FARM_MCP_", extra="ignore", frozen=True)

    port: Port = Field(default=7104, description="HTTP port of /mcp and /healthz.")
    metrics_port: Port = Field(default=7204, description="Prometheus /metrics port; 0 is off.")
    scheduler_address: HostPort = Field(
        default="127.0.0.1:7103", description="host:port of the scheduler (SessionService)."
    )
    storage_address: HostPort = Field(
        default="127.0.0.1:7102", description="host:port of storage (screenshots' bytes)."
    )
    auth_address: HostPort = Field(
        default="127.0.0.1:7101",
        description="host:port of auth, which renews the callers' identity tokens.",
    )
    credential: SecretStr | None = Field(
        default=None,
        description="The service's credential (role mcp), signed with auth's identity key "
        "(the launcher issues it, or `farm credential mcp NAME`): it may only have its "
        "callers' identity tokens renewed. Unset: tokens are not renewed, so a call "
        "made after a caller's token has expired is refused.",
    )
    renew_before_seconds: float = Field(
        default=15.0,
        ge=0,
        description="A caller's identity token with less than this left is renewed before "
        "a farm call carries it.",
    )
    public_url: PublicUrl = Field(
        default="http://127.0.0.1:8080",
        description="The edge's address, for the artifact links tools answer with.",
    )
    tool_timeout_seconds: float = Field(
        default=60.0, ge=5, le=330, description="Time limit of one tool call."
    )
    action_timeout_seconds: float = Field(
        default=10.0,
        ge=0.5,
        le=300,
        description="How long a click, fill, hover, select or press waits for its element; a "
        "selector that matches nothing is answered after this.",
    )
    idle_timeout_seconds: int = Field(
        default=300,
        ge=10,
        le=3600,
        description="An MCP session, and its farm session, end after this long without a "
        "tool call.",
    )
    max_connections: int = Field(
        default=1000, ge=1, description="MCP sessions open at once; beyond, new ones get 503."
    )
    max_text_chars: int = Field(
        default=20_000, ge=100, description="Page content longer than this is cut, with a link."
    )
    sweep_seconds: float = Field(
        default=15.0, gt=0, description="How often idle connections' browsers are looked for."
    )
