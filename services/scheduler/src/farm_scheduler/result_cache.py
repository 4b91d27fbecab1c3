"""The result cache's rules: which specs are the same, how long a result serves, which never do.

Pure functions of a TaskSpec. Two specs ask for the same result when their cache
keys are equal: the SHA-256 of the spec's deterministic serialisation (defaults
filled in) without the fields that only steer how the task is run, not what it
produces (RUN_ONLY_FIELDS). Every other field, a future one included, is part of
the key, so a field this module does not know can only cause a miss, never a
wrong hit. A key is only compared within one tenant (the scheduler's lookup).
"""

import hashlib

from google.protobuf.message import Message

from farm.tasks.v1 import tasks_pb2
from farm_core.errors import InvalidArgument
from farm_core.task_defaults import ACTIONS
from farm_scheduler.field_checks import MAX_CACHE_TTL_SECONDS

RUN_ONLY_FIELDS: frozenset[str] = frozenset(
    {
        "priority",
        "labels",
        "max_attempts",
        "timeout_ms",
        "idempotency_key",
        "deadline",
        "cache_ttl_seconds",
        # How a page is isolated from other tasks (issue 12) does not change it.
        "isolation",
        # Where the ended task is POSTed: a task answered from the cache is POSTed too.
        "callback_url",
    }
)
"""TaskSpec fields left out of the cache key: they change how and when a task runs, and
what happens around it, but not the page it captures. A succeeded task's result does
not depend on its time limit or attempts."""

NEVER_CACHED_FIELDS: frozenset[str] = frozenset({"profile", "save_profile"})
# never_cached() checks these two by name: it runs on every create.
"""A spec that sets any of these is neither answered from the cache nor a source for it:
a profile is state outside the spec that changes between tasks, and saving one is an
effect. (A callback is not: a task answered from the cache calls back like any other.)"""

DEFAULT_TTL_SECONDS: dict[str, int] = {
    "screenshot": 3600,
    "content": 300,
    "pdf": 300,
}
"""The original design's cache times by action (screenshot 1 h, content 5 min)."""
DEFAULT_OTHER_TTL_SECONDS = 60
"""The cache time of every other action (extract, script, audit, snapshot: API 1 min)."""

ACTING_STEPS: frozenset[str] = frozenset(
    {"click", "fill", "press", "select", "check", "uncheck", "evaluate"}
)
"""Steps that act on the page (and may submit forms, buy, post): a task with one has no
default cache time; the caller opts in with an explicit cacheTtlSeconds."""


def action_of(spec: tasks_pb2.TaskSpec) -> str:
    """The name of the spec's action ("" if it has none)."""
    return next((action for action in ACTIONS if spec.HasField(action)), "")


def never_cached(spec: tasks_pb2.TaskSpec) -> bool:
    """Whether the spec's result may neither come from the cache nor go into it."""
    if spec.HasField("screenshot") and spec.screenshot.HasField("compare"):
        # The first screenshot of a baseline becomes it; later ones are compared with
        # whatever the baseline is now.
        return True
    return bool(spec.profile) or spec.save_profile


def default_ttl_seconds(spec: tasks_pb2.TaskSpec) -> int:
    """The cache time of a spec without cacheTtlSeconds."""
    if never_cached(spec) or any(
        not ACTING_STEPS.isdisjoint(_set_fields(step)) for step in spec.steps
    ):
        return 0
    return DEFAULT_TTL_SECONDS.get(action_of(spec), DEFAULT_OTHER_TTL_SECONDS)


def check_cache_ttl(spec: tasks_pb2.TaskSpec) -> None:
    """Fills in cacheTtlSeconds' default; InvalidArgument names it when out of bounds."""
    if not spec.HasField("cache_ttl_seconds"):
        spec.cache_ttl_seconds = default_ttl_seconds(spec)
        return
    ttl = spec.cache_ttl_seconds
    if not 0 <= ttl <= MAX_CACHE_TTL_SECONDS:
        raise InvalidArgument(
            "cacheTtlSeconds", f"must be between 0 and {MAX_CACHE_TTL_SECONDS}, got {ttl}"
        )


PASSING_HTTP_STATUSES: frozenset[int] = frozenset({408, 429})
"""Besides 5xx, the main document's statuses that say "not now" rather than what the page is."""


def result_serves_cache(result: bytes) -> bool:
    """Whether a success's serialized TaskResult may answer later tasks.

    Not when the page answered a passing error (5xx, 408, 429): with failOnHttpError
    off the task succeeds with the error page, which a moment later may be the page
    itself. HTTP caches do not keep such answers either (RFC 9111, 4.2.2).
    """
    status = tasks_pb2.TaskResult.FromString(result).http_status
    return status < 500 and status not in PASSING_HTTP_STATUSES


def looks_up_cache(spec: tasks_pb2.TaskSpec) -> bool:
    """Whether a task of the (validated) spec is to be answered from the cache if it can."""
    return spec.cache_ttl_seconds > 0 and not never_cached(spec)


_KEYED_OUT = tuple(
    name for name in sorted(RUN_ONLY_FIELDS) if name in tasks_pb2.TaskSpec.DESCRIPTOR.fields_by_name
)
"""RUN_ONLY_FIELDS that TaskSpec has, looked up once rather than per create."""


def cache_key(spec: tasks_pb2.TaskSpec) -> str:
    """The hex SHA-256 naming the result the (validated) spec asks for; "" if never cached."""
    if never_cached(spec):
        return ""
    normalised: Message = tasks_pb2.TaskSpec()
    normalised.CopyFrom(spec)
    for name in _KEYED_OUT:
        normalised.ClearField(name)
    return hashlib.sha256(normalised.SerializeToString(deterministic=True)).hexdigest()


def _set_fields(message: Message) -> set[str]:
    """The names of the message's fields that hold something other than their default."""
    return {field.name for field, _ in message.ListFields()}
