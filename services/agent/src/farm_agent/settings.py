"""The agent's settings, read from the environment (prefix FARM_AGENT_)."""

import ipaddress
import os
import socket
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from farm_agent.session_settings import SessionSettings
from farm_core.egress.address_policy import FarmService
from farm_core.egress.allowlist import AllowList, allow_list_setting
from farm_core.settings import FarmSettings, Port
from farm_core.transport import channel_target

PriorityWeights = tuple[int, int, int]


def _default_agent_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class AgentSettings(SessionSettings, FarmSettings):
    """Who the agent is, where it pulls work, how many browsers it runs and how it reports.

    Its sessions' and screencasts' settings are SessionSettings'.
    """

    model_config = SettingsConfigDict(
        env_prefix="FARM_AGENT_", extra="ignore", frozen=True, arbitrary_types_allowed=True
    )

    id: str = Field(
        default_factory=_default_agent_id,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The agent's name in events and uploads; default <hostname>-<pid>.",
    )
    port: Port = Field(default=7110, description="gRPC port (health and reflection only).")
    metrics_port: Port = Field(default=7210, description="Prometheus /metrics port; 0 is off.")
    region: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9_-]*$",
        description="The region whose tasks it pulls besides `any`; empty: only `any`.",
    )
    concurrency: int = Field(
        default=2,
        ge=1,
        description="Places for work: each running task and each open session takes one.",
    )
    storage_address: str = Field(
        default="127.0.0.1:7102",
        description="host:port of the storage service's gRPC, or its replicas as "
        "ip:port,ip:port (called round robin, skipping those that do not answer).",
    )
    credential: SecretStr | None = Field(
        default=None,
        description="This agent's credential (role agent), signed with auth's identity key "
        "(the launcher issues it; docs/operations.md); storage takes uploads only with it.",
    )
    chromium_path: Path = Field(
        default=Path("/usr/bin/chromium"),
        description="The Chromium executable session browsers (and task browsers without "
        "the headless shell) launch.",
    )
    headless_shell_path: Path = Field(
        # Debian's /usr/bin/chromium-headless-shell is a script that does not exec: it
        # would stay as the browser's parent with the browser's arguments.
        default=Path("/usr/lib/chromium/chromium-headless-shell"),
        description="Chromium's headless shell, which task browsers launch; "
        "chromium_path when it is not installed.",
    )
    allow: Annotated[AllowList, NoDecode] = Field(
        default=AllowList(),
        description="Comma-separated CIDRs and host names pages may reach despite the "
        "deny of loopback, private, link-local, metadata, multicast and reserved addresses "
        "(a host name entry opens that name whatever it resolves to). The farm's own "
        "service ports stay refused.",
    )
    farm_addresses: str = Field(
        default="",
        description="Comma-separated host:port of further farm services pages must never "
        "reach, even where FARM_AGENT_ALLOW opens their network (e.g. Envoy, the scheduler); "
        "the agent's own ports, FARM_AGENT_STORAGE_ADDRESS and NATS_URL are always refused.",
    )
    egress_host: str = Field(
        default="127.0.0.9",
        description="Loopback address the egress guard listens on, a port per task. Apart from "
        "127.0.0.1 so that its ports never take one picked there for a farm service; "
        "127.0.0.1 is used where it cannot be bound.",
    )
    guarded_ports_dir: Path | None = Field(
        default=None,
        description="A folder every agent on this host shares (`farm up` sets it): each "
        "writes its sessions' DevTools ports there and refuses pages those of the others "
        "too. Without it an agent refuses only its own, which is enough where each agent "
        "has a loopback of its own (a container, a pod).",
    )
    egress_connect_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long the egress guard waits to resolve a host and to connect to it.",
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
        default=120.0,
        gt=0,
        description="Idle time after which browsers above the minimum close, and warm "
        "contexts no task used.",
    )
    isolation: Literal["warm", "context"] = Field(
        default="warm",
        description="Isolation of tasks that leave `isolation` unspecified: `warm` (a kept "
        "context of the tenant's, cleared between tasks, where the task allows it) or `context` "
        "(a new context per task).",
    )
    warm_contexts: int = Field(
        default=2,
        ge=0,
        description="Warm browser contexts (each with its page) kept at most, over all tenants; "
        "the least recently used idle one is closed to make room. 0: no warm contexts.",
    )
    memory_limit_bytes: int = Field(
        default=0,
        ge=0,
        description="Memory the agent and its browsers may use, in bytes (PSS). 0: the "
        "container's (cgroup's) limit if it has one, else none.",
    )
    memory_trim_percent: float = Field(
        default=80.0,
        gt=0,
        le=100,
        description="Share of the memory limit past which idle warm contexts are closed and "
        "no new ones opened, so that the limit itself is not reached.",
    )
    ack_wait_seconds: float = Field(
        default=30.0, gt=0, description="Time without an ack or progress before redelivery."
    )
    in_progress_seconds: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Interval of in-progress acks while a task runs; at most a third of "
            "FARM_AGENT_ACK_WAIT_SECONDS is used, so a healthy agent's acks stay well "
            "inside the gap that counts a delivery as lapsed (reliability.md)."
        ),
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
    upload_outage_seconds: float = Field(
        default=90.0,
        gt=0,
        description="How long an upload (and any storage call of a task) keeps retrying while "
        "storage answers UNAVAILABLE, with doubling waits up to 5 s, within the task's "
        "deadline; the task stays RUNNING on its attempt meanwhile. Past it the attempt "
        "fails UPLOAD_FAILED.",
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
        description="Delay before redelivering a task whose event could not be published.",
    )
    retry_base_seconds: float = Field(
        default=1.0,
        gt=0,
        description="Delay before the first retry of a failed attempt; it doubles with each "
        "further attempt, and each delay is scaled by a random factor in [0.5, 1.5].",
    )
    retry_max_seconds: float = Field(
        default=60.0, gt=0, description="Cap on the doubling retry delay (before its jitter)."
    )
    breaker_failures: int = Field(
        default=5,
        ge=1,
        description="Consecutive retryable navigation failures (network error, timeout, HTTP "
        "5xx) of one tenant's tasks for one host and port, farm-wide, that open that tenant's "
        "circuit breaker of it.",
    )
    breaker_cooldown_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long an open breaker stays open before one trial task may try the host.",
    )
    breaker_mode: Literal["wait", "fail"] = Field(
        default="wait",
        description="What happens to a task for a host whose breaker is open: 'wait' hands it "
        "back until the cool-down ends (no attempt used); 'fail' ends the attempt at once with "
        "CIRCUIT_OPEN (retryable, an attempt used).",
    )
    host_max_concurrency: int = Field(
        default=4, ge=1, description="Most tasks running at once for one host, farm-wide."
    )
    host_max_rate: float = Field(
        default=10.0,
        gt=0,
        description="Most task starts per second for one host, farm-wide (bursts of up to one "
        "second's worth).",
    )
    host_wait_seconds: float = Field(
        default=2.0,
        ge=0,
        description="How long a task over its host's limits waits in the agent before it is "
        "handed back (no attempt used).",
    )
    host_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A running task's claim on its host's concurrency lapses after this long "
        "unless renewed, so an agent that dies frees its share.",
    )
    tenant_wait_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How long a task is handed back for when its tenant already runs its "
        "maxRunningTasks, farm-wide (no attempt used; the task stays QUEUED).",
    )
    tenant_wait_max_seconds: float = Field(
        default=30.0,
        gt=0,
        description="The longest a task is handed back for when its tenant is at its "
        "maxRunningTasks: each further hand-back of one task doubles its wait from "
        "tenant_wait_seconds up to this, so a held backlog coming back does not take every "
        "fetch and starve other tenants' tasks queued behind it.",
    )
    tenant_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A running task's claim on one of its tenant's maxRunningTasks lapses after "
        "this long unless renewed, so an agent that dies frees its share.",
    )
    heartbeat_seconds: float = Field(
        default=5.0, gt=0, description="Interval of the agent's heartbeats (bucket farm_agents)."
    )
    holder_lost_seconds: float = Field(
        default=15.0,
        gt=0,
        description="A redelivered task that another agent's heartbeat lists as running waits "
        "while that heartbeat is younger than this (or this agent reconnected to NATS less "
        "than this ago): the earlier attempt may still run. An attempt whose delivery lapsed "
        "holds its task's redelivery this long at most after it ended, until the scheduler's "
        "end mark is seen. Several heartbeat intervals.",
    )
    close_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Time a task's browser context gets to close, and a warm context to be "
        "reset (one that cannot is closed); a browser that cannot close one in time is killed "
        "and replaced. Twice it bounds the probe of a browser a task timed out on.",
    )
    page_heap_mb: int = Field(
        default=1024,
        ge=0,
        description="JavaScript heap limit of each page's renderer in MiB, so a page that "
        "allocates without end crashes alone (BROWSER_CRASHED); 0 keeps Chromium's default.",
    )
    restart_driver: bool = Field(
        default=False,
        description="Restart Playwright's driver (node) with the task browser replaced after "
        "FARM_AGENT_TASKS_PER_BROWSER tasks when nothing else is open on it (no other task "
        "browser, no session browser), so that its memory does not creep; the task that "
        "waits for the next browser then waits for the driver's start too.",
    )
    driver_idle_gc_seconds: float = Field(
        default=5.0,
        ge=0,
        description="Once Playwright's driver (node) has been idle this long after work, it "
        "collects its garbage and gives the memory back; 0: never (node's heap then keeps "
        "what its last tasks left).",
    )

    @field_validator("allow", mode="before")
    @classmethod
    def _parse_allow(cls, value: Any) -> Any:
        return allow_list_setting(value, "FARM_AGENT_ALLOW")

    @field_validator("egress_host")
    @classmethod
    def _check_egress_host(cls, value: str) -> str:
        try:
            address = ipaddress.ip_address(value)
        except ValueError as error:
            raise ValueError(f"FARM_AGENT_EGRESS_HOST: {value!r} is not an IP address") from error
        if not address.is_loopback:
            raise ValueError(f"FARM_AGENT_EGRESS_HOST: {value!r} is not a loopback address")
        return value

    @field_validator("farm_addresses")
    @classmethod
    def _check_farm_addresses(cls, value: str) -> str:
        return FarmService.checked_setting(value, "FARM_AGENT_FARM_ADDRESSES")

    @field_validator("storage_address")
    @classmethod
    def _check_storage_address(cls, value: str) -> str:
        try:
            channel_target(value)
        except ValueError as error:
            raise ValueError(f"FARM_AGENT_STORAGE_ADDRESS: {error}") from error
        return FarmService.checked_setting(value, "FARM_AGENT_STORAGE_ADDRESS")

    def farm_services(self) -> list[FarmService]:
        """Where the farm listens, pages may not: own ports, storage, NATS, FARM_ADDRESSES."""
        services = FarmService.of_farm(
            self.host, (self.port, self.metrics_port), self.nats_url, self.farm_addresses
        )
        services.extend(FarmService.parse_list(self.storage_address))
        return services

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

    def file_problems(self) -> list[str]:
        """The shared settings' file problems, and Chromium's, which every session launches.

        The headless shell may be missing: tasks then run in Chromium.
        """
        problems = super().file_problems()
        if not os.access(self.chromium_path, os.X_OK):
            problems.append(
                f"FARM_AGENT_CHROMIUM_PATH={str(self.chromium_path)!r}: no executable there; "
                "install Debian's chromium (make chromium) or point it at a Chromium"
            )
        return problems

    def scratch_dir(self) -> Path:
        """The agent's own temporary directory, where Chromium's profiles live."""
        return self.home / "agents" / self.id / "tmp"

    def temp_dir_records(self) -> Path:
        """Where the agent records its temporary directories outside the scratch directory.

        Beside the scratch directory, which every start clears, so that the next start
        finds them (browser/temp_dirs.py).
        """
        return self.home / "agents" / self.id / "temp-dirs"
