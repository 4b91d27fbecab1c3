"""Checks a SessionSpec or a SessionCommand and fills in defaults; errors name the JSON field.

A command's steps and action are checked by the same code as a TaskSpec's; the
session's own bounds (idle timeout, lifetime) come from the scheduler's settings.
"""

from dataclasses import dataclass

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.errors import InvalidArgument, NotFound
from farm_core.saved import check_saved_name
from farm_core.sessions import SESSION_ID_PATTERN
from farm_core.task_defaults import ACTIONS
from farm_core.task_text import check_labels, check_region
from farm_scheduler.action_checks import check_action
from farm_scheduler.devices import check_device
from farm_scheduler.field_checks import check_url
from farm_scheduler.page_setup import check_page_setup
from farm_scheduler.step_checks import check_steps, check_waits
from farm_scheduler.validation import (
    check_timeout,
    check_video_format,
    check_viewport,
    check_wait_until,
)


def checked_session_id(session_id: str) -> str:
    """The requested session id; one not in the form of ours names no session."""
    if not session_id:
        raise InvalidArgument("id", "is required")
    if not SESSION_ID_PATTERN.fullmatch(session_id):
        raise NotFound("session", session_id[:64])
    return session_id


@dataclass(frozen=True)
class SessionBounds:
    """The lifetimes a session may ask for, and what it gets when it asks for none."""

    default_idle_timeout_seconds: int = 300
    max_idle_timeout_seconds: int = 3600
    default_max_lifetime_seconds: int = 3600
    max_max_lifetime_seconds: int = 86400
    min_seconds: int = 10


def validate_session_spec(
    spec: sessions_pb2.SessionSpec, bounds: SessionBounds
) -> sessions_pb2.SessionSpec:
    """A copy of `spec` with its defaults filled in; InvalidArgument names the first bad field."""
    checked = sessions_pb2.SessionSpec()
    checked.CopyFrom(spec)
    check_device(checked.device)
    if checked.HasField("viewport"):
        check_viewport(checked.viewport)
    check_region(checked.region)
    if checked.HasField("setup"):
        check_page_setup(checked.setup)
    checked.idle_timeout_seconds = _seconds(
        "idleTimeoutSeconds",
        checked.idle_timeout_seconds,
        bounds.default_idle_timeout_seconds,
        bounds.min_seconds,
        bounds.max_idle_timeout_seconds,
    )
    checked.max_lifetime_seconds = _seconds(
        "maxLifetimeSeconds",
        checked.max_lifetime_seconds,
        bounds.default_max_lifetime_seconds,
        bounds.min_seconds,
        bounds.max_max_lifetime_seconds,
    )
    if checked.profile:
        check_saved_name("profile", checked.profile)
    check_labels(checked.labels)
    return checked


def validate_command(
    command: sessions_pb2.SessionCommand, default_timeout_ms: int
) -> sessions_pb2.SessionCommand:
    """A copy of `command` with its defaults filled in; InvalidArgument names the first bad field.

    Unlike a task, a command may have no URL (it stays on the current page) and no
    action (its steps, or its change of setup, are all it does).
    """
    checked = sessions_pb2.SessionCommand()
    checked.CopyFrom(command)
    if checked.url:
        check_url(checked.url)
    chosen = [action for action in ACTIONS if checked.HasField(action)]
    if len(chosen) > 1:
        raise InvalidArgument(
            "command",
            f"at most one action of {', '.join(ACTIONS)} may be set, got {', '.join(chosen)}",
        )
    if chosen:
        as_task = tasks_pb2.TaskSpec()
        getattr(as_task, chosen[0]).CopyFrom(getattr(checked, chosen[0]))
        check_action(as_task)
        getattr(checked, chosen[0]).CopyFrom(getattr(as_task, chosen[0]))
    check_steps(checked.steps)
    checked.wait_until = check_wait_until(checked.wait_until)
    checked.timeout_ms = check_timeout(checked.timeout_ms, default_timeout_ms)
    if checked.HasField("screencast"):
        _check_screencast(checked.screencast)
    if checked.HasField("tabs"):
        _check_tabs(checked.tabs, has_action=bool(chosen))
    check_waits(checked.steps, checked.timeout_ms)
    check_device(checked.device)
    if checked.HasField("viewport"):
        check_viewport(checked.viewport)
    if checked.HasField("setup"):
        check_page_setup(checked.setup)
    return checked


_TABS_ACTIONS = (
    sessions_pb2.TABS_ACTION_LIST,
    sessions_pb2.TABS_ACTION_SELECT,
    sessions_pb2.TABS_ACTION_CLOSE,
    sessions_pb2.TABS_ACTION_NEW,
)


def _check_tabs(tabs: sessions_pb2.TabsControl, *, has_action: bool) -> None:
    if tabs.action not in _TABS_ACTIONS:
        raise InvalidArgument("tabs.action", "is required: LIST, SELECT, CLOSE or NEW")
    if has_action:
        raise InvalidArgument("tabs", "may not be set with an action (its result lists the pages)")
    if tabs.index < 0:
        raise InvalidArgument("tabs.index", f"must be 0 or more, got {tabs.index}")


def _check_screencast(control: sessions_pb2.ScreencastControl) -> None:
    if control.start and control.stop:
        raise InvalidArgument("screencast", "start and stop may not both be set")
    if control.start:
        control.format = check_video_format("screencast.format", control.format)
    elif control.format != tasks_pb2.VIDEO_FORMAT_UNSPECIFIED:
        raise InvalidArgument("screencast.format", "is only allowed with start")


def _seconds(field: str, value: int, default: int, least: int, most: int) -> int:
    if value == 0:
        return default
    if not least <= value <= most:
        raise InvalidArgument(field, f"must be 0 or between {least} and {most}, got {value}")
    return value
