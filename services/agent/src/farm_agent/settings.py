"""The agent's settings, read from the environment (prefix FARM_AGENT_)."""

import os
import socket
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from farm_agent.allowlist import AllowList
from farm_core.settings import FarmSettings

PriorityWeights = tuple[int, int, int]


def _default_agent_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class AgentSettings(FarmSettings):
    """Who the agent is, where it pulls work, how many browsers it runs and how it reports."""

    model_config = SettingsConfigDict(
        env_prefix="FARM_AGENT_", extra="ignore", frozen=True, arbitrary_types_allowed=True
    )

    id: str = Field(
        default_factory=_default_agent_id,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The agent's name in events and uploads; default <hostname>-<pid>.",
    )
    port: int = Field(default=7110, description="gRPC port (health and reflection only).")
    metrics_port: int = Field(default=7210, description="Prometheus /metrics port; 0 is off.")
    region: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9_-]*$",
        description="The region whose tasks it pulls besides `any`; empty: only `any`.",
    )
    concurrency: int = Field(default=2, ge=1, description="Tasks run at the same time.")
    storage_address: str = Field(
        default="127.0.0.1:7102", description="host:port of the storage service's gRPC."
    )
    chromium_path: Path = Field(
        default=Path("/usr/bin/chromium"), description="The Chromium executable to launch."
    )
    allow: Annotated[AllowList, NoDecode] = Field(
        default=AllowList(),
        description="Comma-separated CIDRs and host names pages may reach despite the "
        "deny of loopback, private, link-local and metadata addresses. Read and logged "
        "at start; the guard that enforces the deny is not built yet.",
    )
    min_browsers: int = Field(default=1, ge=0, description="Browsers kept running when idle.")
    max_browsers: int = Field(
        default=1,
        ge=1,
        description="Most browsers running at once; concurrent tasks share a browser, each in "
        "its own context. More browsers cost CPU: raise it on machines with cores to spare.",
    )
    tasks_per_browser: int = Field(
        default=100, ge=1, description="Tasks after which a browser is replaced by a fresh one."
    )
    browser_idle_seconds: float = Field(
        default=120.0, gt=0, description="Idle time after which browsers above the minimum close."
    )
    ack_wait_seconds: float = Field(
        default=30.0, gt=0, description="Time without an ack or progress before redelivery."
    )
    in_progress_seconds: float = Field(
        default=10.0, gt=0, description="Interval of in-progress acks while a task runs."
    )
    priority_weights: Annotated[PriorityWeights, NoDecode] = Field(
        default=(6, 3, 1),
        description="Share of fetches for high, normal and low work, e.g. '6,3,1'.",
    )
    max_result_text_bytes: int = Field(
        default=1024 * 1024, ge=1, description="Content text in a result is cut at this size."
    )
    upload_chunk_bytes: int = Field(
        default=256 * 1024, ge=1024, description="Size of the chunks an artifact is sent in."
    )
    max_deliver: int = Field(
        default=10, ge=1, description="Deliveries of one task before NATS gives up on it."
    )
    fetch_wait_seconds: float = Field(
        default=0.5,
        gt=0,
        description="How long a fetch waits on a queue a new-task signal pointed at "
        "(the periodic look at other queues does not wait).",
    )
    poll_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often queues are checked without a new-task signal (redeliveries).",
    )
    retry_delay_seconds: float = Field(
        default=5.0,
        ge=0,
        description="Delay before redelivering a task whose result was not stored or reported.",
    )

    @field_validator("allow", mode="before")
    @classmethod
    def _parse_allow(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return AllowList.parse(value)
            except ValueError as error:
                raise ValueError(f"FARM_AGENT_ALLOW: {error}") from error
        return value

    @field_validator("priority_weights", mode="before")
    @classmethod
    def _parse_weights(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",")]
            if len(parts) != 3 or not all(part.isdigit() for part in parts):
                raise ValueError(
                    f"FARM_AGENT_PRIORITY_WEIGHTS: expected three whole numbers "
                    f"'high,normal,low' such as '6,3,1', got {value!r}"
                )
            value = tuple(int(part) for part in parts)
        if isinstance(value, tuple) and (sum(value) == 0 or min(value) < 0):
            raise ValueError(
                f"FARM_AGENT_PRIORITY_WEIGHTS: weights must be >= 0 and not all 0, got {value!r}"
            )
        return value

    @field_validator("max_browsers")
    @classmethod
    def _max_at_least_min(cls, value: int, info: Any) -> int:
        minimum = info.data.get("min_browsers", 0)
        if value < minimum:
            raise ValueError(
                f"FARM_AGENT_MAX_BROWSERS ({value}) must be at least "
                f"FARM_AGENT_MIN_BROWSERS ({minimum})"
            )
        return value

    def scratch_dir(self) -> Path:
        """The agent's own temporary directory, where Chromium's profiles live."""
        return self.home / "agents" / self.id / "tmp"
