"""The scheduler's settings, read from the environment (prefix FARM_SCHEDULER_)."""

from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from farm_core.db import DatabaseUrl, async_database_url
from farm_core.egress.address_policy import FarmService
from farm_core.egress.allowlist import AllowList, allow_list_setting
from farm_core.grants import resolve_grant_key
from farm_core.live_tokens import LIVE_SECRET_DESCRIPTION, resolve_live_secret
from farm_core.retention import MAX_RETENTION_DAYS
from farm_core.settings import FarmSettings, Port, PublicUrl
from farm_core.task_defaults import DEFAULT_TIMEOUT_MS
from farm_scheduler.routing.rules import parse_rules


class SchedulerSettings(FarmSettings):
    """Where the scheduler listens, its SQL database, and its limits and timings."""

    model_config = SettingsConfigDict(
        env_prefix="FARM_SCHEDULER_", extra="ignore", frozen=True, arbitrary_types_allowed=True
    )

    port: Port = Field(default=7103, description="gRPC port.")
    metrics_port: Port = Field(default=7203, description="Prometheus /metrics port; 0 is off.")
    database_url: DatabaseUrl = Field(
        default="",
        validation_alias=AliasChoices("FARM_SCHEDULER_DATABASE_URL", "DATABASE_URL"),
        description="SQL database; empty: a SQLite file under FARM_HOME/data.",
    )
    max_attempts_cap: int = Field(
        default=10, ge=1, description="The largest maxAttempts a task may ask for."
    )
    default_timeout_ms: int = Field(
        default=DEFAULT_TIMEOUT_MS,
        ge=1000,
        le=300000,
        description="An attempt's time limit when the task gives timeoutMs 0.",
    )
    run_queue_wait_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How long RunTask waits for its task in the queue (and between its "
        "attempts), on top of every attempt's timeout.",
    )
    run_deadline_grace_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long past a task's deadline RunTask still waits for its final state.",
    )
    idempotency_window_seconds: float = Field(
        default=86400.0,
        gt=0,
        description="How long an idempotency key names its first task; after that the same "
        "key creates a new task.",
    )
    task_retention_days: int = Field(
        default=30,
        ge=0,
        le=MAX_RETENTION_DAYS,
        description="How long ended tasks (and closed sessions) are kept, with their attempts "
        "and artifacts, after they ended (checked hourly); 0 keeps them for ever.",
    )
    retention_batch_size: int = Field(
        default=100,
        ge=1,
        le=10000,
        description="How many ended tasks (or closed sessions) the retention sweep deletes "
        "in one transaction; it goes on batch after batch until none is left.",
    )
    retention_artifacts_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        description="How long the retention sweep waits for storage to delete one batch's "
        "artifacts; without an answer the batch is kept and tried on the next pass.",
    )
    deadline_sweep_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often tasks still queued at their deadline are failed.",
    )
    republish_interval_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often tasks accepted while NATS was unreachable are published again.",
    )
    republish_grace_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How long after a task was accepted (or requeued) the republisher may "
        "publish it, and after it failed its dead letter: until then the call that stored it "
        "may still be publishing it. Must be above FARM_SCHEDULER_PUBLISH_TIMEOUT_SECONDS.",
    )
    create_group_max: int = Field(
        default=1000,
        ge=1,
        le=1000,
        description="The most concurrent single creates of one tenant written to SQL and "
        "published together (group commit); 1 writes each create alone.",
    )
    cache_keys_reload_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How often each replica reloads from SQL its filter of the cache keys that "
        "have a result (cached_keys.py); between reloads the replicas announce new results.",
    )
    publish_timeout_seconds: float = Field(
        default=5.0, gt=0, description="How long one JetStream publish may wait for its ack."
    )
    accept_unbound_events: bool = Field(
        default=False,
        description="Also apply events on the subjects agents used before their NATS user bound "
        "their id (`events.tasks.<task_id>`, `events.sessions.<session_id>`), trusting the "
        "payload's agent id: only for the window of a rolling upgrade of the agents.",
    )
    event_ack_wait_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long NATS waits for a scheduler to apply an agent event it fetched "
        "before delivering it again: after a scheduler crash, the events it held are applied "
        "this much later.",
    )
    late_event_seconds: float = Field(
        default=5.0,
        gt=0,
        description="A task-ending agent event that JetStream stored more than this long after "
        "the agent built it (sent again after a NATS outage) marks its task ended, so that a "
        "redelivery of the task, its ack wait having run out meanwhile, is acked unrun: keep "
        "it well under the agents' ack wait.",
    )
    watch_poll_seconds: float = Field(
        default=5.0,
        gt=0,
        description="WatchTask and RunTask re-read the task at least this often, "
        "in case a change was not heard over NATS.",
    )

    public_url: PublicUrl = Field(
        default="http://127.0.0.1:8080",
        validation_alias=AliasChoices("FARM_SCHEDULER_PUBLIC_URL", "FARM_PUBLIC_URL"),
        description="The edge's address as clients reach it; sessions' cdpUrl (ws:// or "
        "wss://) and liveUrl are built from it.",
    )
    session_idle_timeout_seconds: int = Field(
        default=300, ge=10, description="A session's idle timeout when it asks for none."
    )
    session_max_idle_timeout_seconds: int = Field(
        default=3600, ge=10, description="The longest idle timeout a session may ask for."
    )
    session_lifetime_seconds: int = Field(
        default=3600, ge=10, description="A session's maximum lifetime when it asks for none."
    )
    session_max_lifetime_seconds: int = Field(
        default=86400, ge=10, description="The longest maximum lifetime a session may ask for."
    )
    session_min_seconds: int = Field(
        default=10,
        ge=1,
        description="The shortest idle timeout and maximum lifetime a session may ask for.",
    )
    session_open_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long an agent may take to open a session's browser before the "
        "next agent is tried; the agent closes a browser it opens later at once.",
    )
    session_place_timeout_seconds: float = Field(
        default=600.0,
        gt=0,
        description="How long CreateSession may look for an agent to open the session (every "
        "agent it tries, each for up to the open timeout and 5 s more) before it gives up "
        "(DEADLINE_EXCEEDED); the sweep forgets a session a scheduler that died left being "
        "placed once it is a minute older than this.",
    )
    session_close_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        description="How long an agent may take to close a session (its recording is encoded "
        "and stored first).",
    )
    session_agent_lost_seconds: float = Field(
        default=15.0,
        gt=0,
        description="A session whose agent sent no heartbeat for this long is closed "
        "(AGENT_LOST); agents beat every few seconds.",
    )
    session_sweep_interval_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often sessions of lost agents, and browsers no open session claims, "
        "are looked for.",
    )
    session_unclaimed_grace_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long an agent may list a session browser in its heartbeats with no "
        "open session on that agent claiming it (its opening was given up, or its scheduler "
        "died before it recorded the agent's answer) before the scheduler orders it closed.",
    )
    fleet_gauges_interval_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How often the fleet gauges (agents, queue depths and ages, breakers, "
        "dead letters, open sessions) are read for /metrics.",
    )
    view_token_ttl_seconds: float = Field(
        default=300.0, gt=0, le=3600, description="How long a live view token may be used."
    )
    cdp_token_ttl_seconds: float = Field(
        default=900.0,
        gt=0,
        le=86400,
        description="How long a CDP attach token may be used (no longer than its session "
        "lasts); a client may attach and reconnect with it until then.",
    )
    live_token_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("FARM_LIVE_TOKEN_SECRET"),
        description=LIVE_SECRET_DESCRIPTION,
    )
    grant_key: SecretStr | None = Field(
        default=None,
        description="PEM Ed25519 private key the scheduler signs tasks' and sessions' upload "
        "grants with (the scheduler's own, not auth's identity key; storage holds its public "
        "half as FARM_STORAGE_GRANT_PUBLIC_KEY); default: FARM_HOME/grant-key.",
    )
    grant_grace_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How long a grant outlives what bounds its owner: a task's message in the "
        "task stream (or its deadline), a session's expiry; covers the last attempt's run and "
        "upload.",
    )
    grant_trees: bool = Field(
        default=True,
        description="Sign the grants of tasks published together (a batch, a group of creates) "
        "as one Merkle tree, one signature for the group; false while storage still runs a "
        "version that reads only single grants (a rolling upgrade).",
    )

    callback_allow: Annotated[AllowList, NoDecode] = Field(
        default=AllowList(),
        description="Comma-separated CIDRs and host names callbacks may reach despite the "
        "deny of loopback, private, link-local, metadata, multicast and reserved addresses "
        "(as FARM_AGENT_ALLOW for pages). The farm's own service ports stay refused.",
    )
    farm_addresses: str = Field(
        default="",
        description="Comma-separated host:port of the farm's services callbacks must never "
        "reach, even where FARM_SCHEDULER_CALLBACK_ALLOW opens their network; the "
        "scheduler's own ports and NATS_URL are always refused.",
    )
    callback_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long one callback delivery may take."
    )
    callback_retry_first_seconds: float = Field(
        default=1.0,
        gt=0,
        description="The wait after a callback's first failed delivery; it doubles after "
        "each further failure.",
    )
    callback_retry_max_seconds: float = Field(
        default=300.0, gt=0, description="The longest wait between two callback deliveries."
    )
    callback_retry_window_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How long after a task ended its callback is still retried; then it is FAILED.",
    )
    callback_poll_seconds: float = Field(
        default=0.5, gt=0, description="How often callbacks due for delivery are looked for."
    )
    callback_concurrency: int = Field(
        default=16, ge=1, description="Callbacks delivered at once by one scheduler."
    )
    webhook_secret_overlap_seconds: float = Field(
        default=86400.0,
        ge=0,
        description="How long after RotateWebhookSecret callbacks are also signed with the "
        "previous secret.",
    )
    region_routes: str = Field(
        default="",
        description="Region rules, comma-separated pattern=region, first match wins: a task "
        "without its own region whose URL's host matches a pattern (shell-style, as *.eu) "
        "is queued for that region first. Empty: no routing.",
    )
    region_fallback_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long a routed task waits unstarted in its preferred region before "
        "it is moved to any region; at once when that region has no live agent.",
    )
    region_fallback_interval_seconds: float = Field(
        default=1.0, gt=0, description="How often routed tasks due to fall back are looked for."
    )

    @field_validator("publish_timeout_seconds")
    @classmethod
    def _grace_above_publish_timeout(cls, value: float, info: Any) -> float:
        # A first publish awaits its ack this long: a republish inside it would go out twice.
        grace = info.data.get("republish_grace_seconds")
        if grace is not None and grace <= value:
            raise ValueError(
                f"FARM_SCHEDULER_REPUBLISH_GRACE_SECONDS ({grace:g}) must be above "
                f"FARM_SCHEDULER_PUBLISH_TIMEOUT_SECONDS ({value:g}): the republisher must "
                "leave a task while its first publish may still await JetStream's ack"
            )
        return value

    @field_validator("region_routes")
    @classmethod
    def _check_region_routes(cls, value: str) -> str:
        try:
            parse_rules(value)
        except ValueError as error:
            raise ValueError(f"FARM_SCHEDULER_REGION_ROUTES: {error}") from error
        return value

    @field_validator("callback_allow", mode="before")
    @classmethod
    def _parse_allow(cls, value: Any) -> Any:
        return allow_list_setting(value, "FARM_SCHEDULER_CALLBACK_ALLOW")

    @field_validator("farm_addresses")
    @classmethod
    def _check_farm_addresses(cls, value: str) -> str:
        return FarmService.checked_setting(value, "FARM_SCHEDULER_FARM_ADDRESSES")

    def resolved_live_token_secret(self) -> str:
        """The secret of live view tokens, shared with auth alone."""
        return resolve_live_secret(self.live_token_secret, self.home)

    def resolved_grant_key(self) -> str:
        """The private key of upload grants (PEM), the scheduler's alone."""
        return resolve_grant_key(self.grant_key, self.home)

    def farm_services(self) -> list[FarmService]:
        """Where the farm listens, callbacks may not: own ports, NATS, FARM_ADDRESSES."""
        return FarmService.of_farm(
            self.host, (self.port, self.metrics_port), self.nats_url, self.farm_addresses
        )

    def resolved_database_url(self) -> str:
        """The SQLAlchemy async URL of the database (SQLite under FARM_HOME by default)."""
        return async_database_url(self.database_url, self.database_path("scheduler"))
