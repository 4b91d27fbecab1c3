"""The console's settings, read from the environment (prefix FARM_CONSOLE_)."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from farm_core.setting_files import ca_file_problem
from farm_core.settings import FarmSettings, HostPort, Port


class ConsoleSettings(FarmSettings):
    """Where the console listens, the edge it calls the farm through, and its cookie."""

    model_config = SettingsConfigDict(env_prefix="FARM_CONSOLE_", extra="ignore", frozen=True)

    port: Port = Field(default=7105, description="HTTP port of /console/ and /healthz.")
    metrics_port: Port = Field(default=7205, description="Prometheus /metrics port; 0 is off.")
    farm_address: HostPort = Field(
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
        "http://HOST:16686/trace/{trace_id}), the rest kept as it is, braces included; "
        "empty: the trace id is shown without a link.",
    )
    call_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Time limit of one call to the farm."
    )
    credential: str = Field(
        default="",
        description="The console's credential (role console: `farm credential console NAME`; "
        "`farm up` issues one). With it, each call names its browser's address to the edge's "
        "check, which counts that browser's refused keys, not the console's address.",
    )
    trusted_proxies: str = Field(
        default="127.0.0.1,::1",
        description="Addresses and CIDRs (comma-separated; * for any) of the proxy in front "
        "(the farm's Envoy) whose x-forwarded-for names the browser's address; a request "
        "from any other peer is counted by that peer's own address.",
    )
    failed_signin_limit: int = Field(
        default=10,
        ge=0,
        description="Refused keys one browser address may bring in a window before it "
        "waits (0: no limit). Without a credential auth counts them against the console's "
        "own address: keep it, times the replicas, at most FARM_AUTH_FAILED_AUTH_LIMIT.",
    )
    failed_signin_window_seconds: float = Field(
        default=60.0, gt=0, description="The window refused sign-ins are counted in."
    )
    failed_signin_block_seconds: float = Field(
        default=60.0, gt=0, description="How long an address past the limit waits."
    )
    failed_signin_max_addresses: int = Field(
        default=100_000, ge=1, description="Addresses whose refused sign-ins are remembered."
    )

    def file_problems(self) -> list[str]:
        """The shared settings' file problems, and the edge's CA's."""
        problems = super().file_problems()
        if self.farm_ca_file is not None:
            problem = ca_file_problem("FARM_CONSOLE_FARM_CA_FILE", self.farm_ca_file)
            problems.extend([problem] if problem else [])
        return problems
