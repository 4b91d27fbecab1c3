"""Checks a TaskSpec and fills in its defaults; each error names the field as sent in JSON.

The parts have modules of their own (field_checks, step_checks, action_checks,
page_setup); the MAX_/MIN_ constants of all of them are every size limit a TaskSpec
has, and docs/api.md lists them (a test checks the two agree). The defaults are the
farm's, shared with the agents (`farm_core.task_defaults`).
"""

import datetime as dt

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.db import utcnow
from farm_core.errors import InvalidArgument
from farm_core.idempotency import MAX_IDEMPOTENCY_KEY_CHARS as MAX_IDEMPOTENCY_KEY_CHARS
from farm_core.saved import check_saved_name
from farm_core.task_defaults import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    DEFAULT_VIDEO_FORMAT,
    DEFAULT_VIEWPORT,
    DEFAULT_WAIT_UNTIL,
)
from farm_core.task_limits import MAX_DEADLINE_AHEAD as MAX_DEADLINE_AHEAD
from farm_core.task_limits import MAX_VIEWPORT_PIXELS as MAX_VIEWPORT_PIXELS
from farm_core.task_text import MAX_LABEL_KEY_CHARS as MAX_LABEL_KEY_CHARS
from farm_core.task_text import MAX_LABEL_VALUE_CHARS as MAX_LABEL_VALUE_CHARS
from farm_core.task_text import MAX_LABELS as MAX_LABELS
from farm_core.task_text import MAX_REGION_CHARS as MAX_REGION_CHARS
from farm_core.task_text import REGION_PATTERN as REGION_PATTERN
from farm_core.task_text import check_label_key as check_label_key
from farm_core.task_text import check_labels, check_region
from farm_core.timestamps import from_timestamp
from farm_scheduler.action_checks import check_one_action
from farm_scheduler.devices import MAX_DEVICE_CHARS as MAX_DEVICE_CHARS
from farm_scheduler.devices import check_device
from farm_scheduler.field_checks import (
    MAX_TIMEOUT_MS,
    MIN_TIMEOUT_MS,
    check_enum,
    check_length,
    check_url,
)
from farm_scheduler.page_setup import check_page_setup
from farm_scheduler.result_cache import check_cache_ttl
from farm_scheduler.step_checks import check_steps, check_waits


def validate_spec(
    spec: tasks_pb2.TaskSpec,
    *,
    max_attempts_cap: int,
    default_timeout_ms: int,
    now: dt.datetime | None = None,
) -> tasks_pb2.TaskSpec:
    """A copy of `spec` with its defaults filled in; InvalidArgument names the first bad field.

    `now` (default: the current time) is what the deadline must come after.
    """
    checked = tasks_pb2.TaskSpec()
    checked.CopyFrom(spec)
    check_url(checked.url)
    check_one_action(checked)
    check_steps(checked.steps)
    _check_page(checked)
    _check_limits(checked, max_attempts_cap=max_attempts_cap, default_timeout_ms=default_timeout_ms)
    check_waits(checked.steps, checked.timeout_ms)
    _check_deadline(checked, utcnow() if now is None else now)
    _check_routing(checked)
    check_labels(checked.labels)
    check_length("idempotencyKey", checked.idempotency_key, MAX_IDEMPOTENCY_KEY_CHARS)
    if checked.HasField("screencast"):
        checked.screencast.format = check_video_format(
            "screencast.format", checked.screencast.format
        )
    if checked.HasField("setup"):
        check_page_setup(checked.setup)
    _check_profile(checked)
    check_cache_ttl(checked)
    if checked.callback_url:
        check_url(checked.callback_url, "callbackUrl")
    return checked


def runs_script(spec: tasks_pb2.TaskSpec | sessions_pb2.SessionCommand) -> bool:
    """Whether the spec runs the caller's JavaScript (a script action or an evaluate step).

    Such a task or command needs the `script` scope.
    """
    return spec.HasField("script") or any(step.evaluate for step in spec.steps)


def _check_profile(spec: tasks_pb2.TaskSpec) -> None:
    """Checks the profile a task starts from and saves to."""
    if spec.profile:
        check_saved_name("profile", spec.profile)
    elif spec.save_profile:
        raise InvalidArgument("saveProfile", "needs a profile to save to")


def _check_page(spec: tasks_pb2.TaskSpec) -> None:
    check_device(spec.device)
    if spec.HasField("viewport"):
        check_viewport(spec.viewport)
    elif not spec.device:
        spec.viewport.width, spec.viewport.height = DEFAULT_VIEWPORT
    spec.wait_until = check_wait_until(spec.wait_until)
    check_enum("isolation", spec.isolation, tasks_pb2.Isolation)


def check_viewport(viewport: tasks_pb2.Viewport) -> None:
    """Raises InvalidArgument unless both sides are within 1 and MAX_VIEWPORT_PIXELS."""
    for field, size in (("width", viewport.width), ("height", viewport.height)):
        if not 1 <= size <= MAX_VIEWPORT_PIXELS:
            raise InvalidArgument(
                f"viewport.{field}", f"must be between 1 and {MAX_VIEWPORT_PIXELS}, got {size}"
            )


def check_wait_until(
    wait_until: "tasks_pb2.WaitUntil.ValueType",
) -> "tasks_pb2.WaitUntil.ValueType":
    """The waitUntil to use: the given one, or the default for unspecified."""
    check_enum("waitUntil", wait_until, tasks_pb2.WaitUntil)
    if wait_until == tasks_pb2.WAIT_UNTIL_UNSPECIFIED:
        return DEFAULT_WAIT_UNTIL
    return wait_until


def check_video_format(
    field: str, video_format: "tasks_pb2.VideoFormat.ValueType"
) -> "tasks_pb2.VideoFormat.ValueType":
    """The screencast's format to use: the given one, or the default for unspecified."""
    check_enum(field, video_format, tasks_pb2.VideoFormat)
    if video_format == tasks_pb2.VIDEO_FORMAT_UNSPECIFIED:
        return DEFAULT_VIDEO_FORMAT
    return video_format


def check_timeout(timeout_ms: int, default_timeout_ms: int) -> int:
    """The time limit to use: the given timeoutMs within its bounds, or the default for 0."""
    if timeout_ms == 0:
        return default_timeout_ms
    if not MIN_TIMEOUT_MS <= timeout_ms <= MAX_TIMEOUT_MS:
        raise InvalidArgument(
            "timeoutMs",
            f"must be 0 or between {MIN_TIMEOUT_MS} and {MAX_TIMEOUT_MS}, got {timeout_ms}",
        )
    return timeout_ms


def _check_limits(
    spec: tasks_pb2.TaskSpec, *, max_attempts_cap: int, default_timeout_ms: int
) -> None:
    spec.timeout_ms = check_timeout(spec.timeout_ms, default_timeout_ms)
    if spec.max_attempts == 0:
        spec.max_attempts = min(DEFAULT_MAX_ATTEMPTS, max_attempts_cap)
    elif not 1 <= spec.max_attempts <= max_attempts_cap:
        raise InvalidArgument(
            "maxAttempts",
            f"must be 0 or between 1 and {max_attempts_cap}, got {spec.max_attempts}",
        )


def _check_deadline(spec: tasks_pb2.TaskSpec, now: dt.datetime) -> None:
    if not spec.HasField("deadline"):
        return
    try:
        deadline = from_timestamp(spec.deadline)
    except (ValueError, OverflowError) as error:
        raise InvalidArgument("deadline", f"is not a valid time: {error}") from error
    if deadline <= now:
        raise InvalidArgument(
            "deadline", f"must be in the future, got {deadline.isoformat()} (now {now.isoformat()})"
        )
    if deadline > now + MAX_DEADLINE_AHEAD:
        raise InvalidArgument(
            "deadline",
            f"must be at most 24 hours ahead, got {deadline.isoformat()} (now {now.isoformat()})",
        )


def _check_routing(spec: tasks_pb2.TaskSpec) -> None:
    check_enum("priority", spec.priority, tasks_pb2.Priority)
    if spec.priority == tasks_pb2.PRIORITY_UNSPECIFIED:
        spec.priority = DEFAULT_PRIORITY
    check_region(spec.region)
