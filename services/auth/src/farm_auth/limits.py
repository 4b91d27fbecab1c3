"""Rate limits and quotas as set per key and per tenant, with the farm's defaults filled in."""

from dataclasses import dataclass

from farm.auth.v1 import auth_pb2
from farm_core.errors import InvalidArgument
from farm_core.key_limits import MAX_GRACE_SECONDS, MAX_RATE
from farm_core.quotas import TenantQuotas


@dataclass(frozen=True)
class RateSetting:
    """A key's rate limit as stored; None means the farm's default."""

    per_second: int | None = None
    burst: int | None = None


@dataclass(frozen=True)
class QuotaSetting:
    """A tenant's quotas as stored; None means the farm's default."""

    max_queued_tasks: int | None = None
    max_running_tasks: int | None = None
    max_artifact_bytes: int | None = None
    max_open_sessions: int | None = None


@dataclass(frozen=True)
class RateLimit:
    """A rate limit in force: `per_second` tokens a second, at most `burst` at once."""

    per_second: int
    burst: int

    def to_proto(self) -> auth_pb2.RateLimit:
        """The API's view of the limit."""
        return auth_pb2.RateLimit(per_second=self.per_second, burst=self.burst)


@dataclass(frozen=True)
class LimitDefaults:
    """The farm's defaults for what a key or tenant has no setting of; 0 quotas are unlimited."""

    rate_per_second: int
    rate_burst: int
    max_queued_tasks: int
    max_running_tasks: int
    max_artifact_bytes: int
    max_open_sessions: int

    def rate(self, setting: RateSetting) -> RateLimit:
        """The rate limit in force for a key with `setting`."""
        return RateLimit(
            per_second=setting.per_second or self.rate_per_second,
            burst=setting.burst or self.rate_burst,
        )

    def quotas(self, setting: QuotaSetting) -> TenantQuotas:
        """The quotas in force for a tenant with `setting`."""
        return TenantQuotas(
            max_queued_tasks=setting.max_queued_tasks or self.max_queued_tasks,
            max_running_tasks=setting.max_running_tasks or self.max_running_tasks,
            max_artifact_bytes=setting.max_artifact_bytes or self.max_artifact_bytes,
            max_open_sessions=setting.max_open_sessions or self.max_open_sessions,
        )


def rate_setting_proto(setting: RateSetting) -> auth_pb2.RateLimit:
    """The API's view of a key's own setting (0 for a default)."""
    return auth_pb2.RateLimit(per_second=setting.per_second or 0, burst=setting.burst or 0)


def quotas_proto(quotas: TenantQuotas | QuotaSetting) -> auth_pb2.TenantLimits:
    """The API's view of quotas (0 for a default or unlimited)."""
    return auth_pb2.TenantLimits(
        max_queued_tasks=quotas.max_queued_tasks or 0,
        max_running_tasks=quotas.max_running_tasks or 0,
        max_artifact_bytes=quotas.max_artifact_bytes or 0,
        max_open_sessions=quotas.max_open_sessions or 0,
    )


def _checked(field: str, value: int, most: int | None = None) -> int | None:
    """An updated limit: None (back to the default) for 0, else 1 to `most`."""
    if value < 0 or (most is not None and value > most):
        bound = f"between 0 (the default) and {most}" if most else "0 (the default) or more"
        raise InvalidArgument(field, f"must be {bound}, got {value}")
    return value or None


def updated_rate(current: RateSetting, request: auth_pb2.UpdateApiKeyRequest) -> RateSetting:
    """`current` with the fields UpdateApiKey sets replaced, each checked."""
    per_second, burst = current.per_second, current.burst
    if request.HasField("rate_limit_per_second"):
        per_second = _checked("rateLimitPerSecond", request.rate_limit_per_second, MAX_RATE)
    if request.HasField("rate_limit_burst"):
        burst = _checked("rateLimitBurst", request.rate_limit_burst, MAX_RATE)
    return RateSetting(per_second, burst)


def updated_quotas(
    current: QuotaSetting, request: auth_pb2.UpdateTenantLimitsRequest
) -> QuotaSetting:
    """`current` with the fields UpdateTenantLimits sets replaced, each checked."""
    queued, running, stored, sessions = (
        current.max_queued_tasks,
        current.max_running_tasks,
        current.max_artifact_bytes,
        current.max_open_sessions,
    )
    if request.HasField("max_queued_tasks"):
        queued = _checked("maxQueuedTasks", request.max_queued_tasks)
    if request.HasField("max_running_tasks"):
        running = _checked("maxRunningTasks", request.max_running_tasks)
    if request.HasField("max_artifact_bytes"):
        stored = _checked("maxArtifactBytes", request.max_artifact_bytes)
    if request.HasField("max_open_sessions"):
        sessions = _checked("maxOpenSessions", request.max_open_sessions)
    return QuotaSetting(queued, running, stored, sessions)


def grace_seconds(request: auth_pb2.RotateApiKeyRequest, default_seconds: float) -> float:
    """How long a rotated key's old secret keeps working: the request's, else the default."""
    if not request.HasField("grace_seconds"):
        return default_seconds
    if not 0 <= request.grace_seconds <= MAX_GRACE_SECONDS:
        raise InvalidArgument(
            "graceSeconds",
            f"must be between 0 and {MAX_GRACE_SECONDS} (30 days), got {request.grace_seconds}",
        )
    return float(request.grace_seconds)
