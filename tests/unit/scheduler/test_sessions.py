"""Sessions in the scheduler, as pure logic: validation, unclaimed browsers, links,
command errors, the sweep's closes."""

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from farm_core.quotas import TenantQuotas
from farm_core.sessions import CloseReason
from farm_scheduler.sessions.api import command_error
from farm_scheduler.sessions.links import session_links
from farm_scheduler.sessions.placement import refusal_note
from farm_scheduler.sessions.records import SessionRecord
from farm_scheduler.sessions.store import check_session_quota, new_session_id
from farm_scheduler.sessions.sweep_closes import SweepCloses
from farm_scheduler.sessions.unclaimed import (
    HeldBrowser,
    Unclaimed,
    UnclaimedClose,
    UnclaimedWatch,
    unclaimed_close,
)
from farm_scheduler.sessions.validation import (
    SessionBounds,
    checked_session_id,
    validate_command,
    validate_session_spec,
)
from tests.clock import MovedClock
from tests.helpers import assert_eventually

NOW = dt.datetime(2026, 12, 4, 12, tzinfo=dt.UTC)
BOUNDS = SessionBounds()


def test_a_spec_without_lifetimes_gets_the_defaults_and_keeps_the_rest() -> None:
    spec = sessions_pb2.SessionSpec(device="iPhone 13", record=True, labels={"team": "qa"})
    checked = validate_session_spec(spec, BOUNDS)
    assert checked.idle_timeout_seconds == BOUNDS.default_idle_timeout_seconds
    assert checked.max_lifetime_seconds == BOUNDS.default_max_lifetime_seconds
    assert (checked.device, checked.record, dict(checked.labels)) == (
        "iPhone 13",
        True,
        {"team": "qa"},
    )
    assert spec.idle_timeout_seconds == 0, "the request is not changed"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (sessions_pb2.SessionSpec(idle_timeout_seconds=9), "idleTimeoutSeconds"),
        (sessions_pb2.SessionSpec(idle_timeout_seconds=3601), "idleTimeoutSeconds"),
        (sessions_pb2.SessionSpec(max_lifetime_seconds=86401), "maxLifetimeSeconds"),
        (
            sessions_pb2.SessionSpec(viewport=tasks_pb2.Viewport(width=10, height=0)),
            "viewport.height",
        ),
        (sessions_pb2.SessionSpec(region="EU West"), "region"),
        (sessions_pb2.SessionSpec(profile="a/b"), "profile"),
        (sessions_pb2.SessionSpec(profile="x" * 65), "profile"),
        (sessions_pb2.SessionSpec(device="d" * 101), "device"),
        (sessions_pb2.SessionSpec(labels={"Bad Key": "v"}), "labels"),
    ],
)
def test_a_bad_spec_names_its_field(spec: sessions_pb2.SessionSpec, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_session_spec(spec, BOUNDS)
    assert caught.value.field == field


def test_lifetimes_at_their_bounds_are_kept() -> None:
    spec = sessions_pb2.SessionSpec(idle_timeout_seconds=10, max_lifetime_seconds=86400)
    checked = validate_session_spec(spec, BOUNDS)
    assert (checked.idle_timeout_seconds, checked.max_lifetime_seconds) == (10, 86400)


def test_a_farm_may_let_sessions_ask_for_shorter_lifetimes() -> None:
    bounds = replace(BOUNDS, min_seconds=2)
    spec = sessions_pb2.SessionSpec(idle_timeout_seconds=2, max_lifetime_seconds=2)
    checked = validate_session_spec(spec, bounds)
    assert (checked.idle_timeout_seconds, checked.max_lifetime_seconds) == (2, 2)
    with pytest.raises(InvalidArgument) as caught:
        validate_session_spec(sessions_pb2.SessionSpec(max_lifetime_seconds=1), bounds)
    assert caught.value.field == "maxLifetimeSeconds"


def test_a_command_may_have_no_url_and_no_action_and_gets_its_defaults() -> None:
    command = sessions_pb2.SessionCommand(steps=[tasks_pb2.Step(click="#go")])
    checked = validate_command(command, default_timeout_ms=30000)
    assert checked.timeout_ms == 30000
    assert checked.wait_until == tasks_pb2.WAIT_UNTIL_LOAD
    assert list(checked.steps) == [tasks_pb2.Step(click="#go")]


def test_a_commands_action_gets_the_same_defaults_as_a_tasks() -> None:
    command = sessions_pb2.SessionCommand(
        screenshot=tasks_pb2.ScreenshotOptions(format=tasks_pb2.IMAGE_FORMAT_JPEG)
    )
    checked = validate_command(command, default_timeout_ms=30000)
    assert checked.screenshot.quality == 80
    assert (
        validate_command(
            sessions_pb2.SessionCommand(pdf=tasks_pb2.PdfOptions(paper_format="letter")), 30000
        ).pdf.paper_format
        == "Letter"
    )


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (sessions_pb2.SessionCommand(url="file:///etc/passwd"), "url: must be http or https"),
        (
            sessions_pb2.SessionCommand(
                content=tasks_pb2.ContentOptions(), pdf=tasks_pb2.PdfOptions()
            ),
            "command: at most one action",
        ),
        (sessions_pb2.SessionCommand(steps=[tasks_pb2.Step()]), "steps[0]: exactly one of"),
        (sessions_pb2.SessionCommand(timeout_ms=999), "timeoutMs: must be 0 or between"),
        (
            sessions_pb2.SessionCommand(script=tasks_pb2.ScriptOptions()),
            "script.source: is required",
        ),
    ],
)
def test_a_bad_command_names_its_field(command: sessions_pb2.SessionCommand, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate_command(command, default_timeout_ms=30000)


def test_a_screencast_started_without_a_format_is_webm() -> None:
    command = sessions_pb2.SessionCommand(screencast=sessions_pb2.ScreencastControl(start=True))
    checked = validate_command(command, default_timeout_ms=30000)
    assert checked.screencast.format == tasks_pb2.VIDEO_FORMAT_WEBM
    stop = sessions_pb2.SessionCommand(screencast=sessions_pb2.ScreencastControl(stop=True))
    assert validate_command(stop, default_timeout_ms=30000).screencast.stop


@pytest.mark.parametrize(
    ("control", "message"),
    [
        (
            sessions_pb2.ScreencastControl(start=True, stop=True),
            "screencast: start and stop may not both be set",
        ),
        (
            # 7 is no VideoFormat: the test sends what an out-of-date client could.
            sessions_pb2.ScreencastControl(start=True, format=7),  # type: ignore[arg-type]
            "screencast.format: has no value 7",
        ),
        (
            sessions_pb2.ScreencastControl(stop=True, format=tasks_pb2.VIDEO_FORMAT_MP4),
            "screencast.format: is only allowed with start",
        ),
    ],
)
def test_a_bad_screencast_control_names_its_field(
    control: sessions_pb2.ScreencastControl, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        validate_command(sessions_pb2.SessionCommand(screencast=control), 30000)


def test_a_browser_is_overdue_only_once_unclaimed_for_longer_than_the_grace() -> None:
    clock = MovedClock()
    watch = UnclaimedWatch(30, clock)
    late, brief = HeldBrowser("a", "ses_late"), HeldBrowser("a", "ses_brief")
    assert watch.overdue([late, brief]) == []
    clock.now += 20
    # `brief` was claimed meanwhile (its opening was recorded): forgotten.
    assert watch.overdue([late]) == []
    clock.now += 11
    assert watch.overdue([late, brief]) == [late]
    # Ordered closed: again only after another grace; `brief` counts from its return.
    clock.now += 20
    assert watch.overdue([late, brief]) == []
    clock.now += 11
    assert watch.overdue([late, brief]) == [late, brief]


def session_row(
    agent_id: str, state: str = "SESSION_STATE_ACTIVE", reason: str = ""
) -> SessionRecord:
    return SessionRecord(
        id="ses_0123456789abcdef",
        tenant="acme",
        state=state,
        spec=sessions_pb2.SessionSpec(),
        agent_id=agent_id,
        create_time=NOW,
        expire_time=NOW,
        close_reason=reason,
    )


def test_an_unclaimed_browser_is_closed_as_abandoned_unless_its_session_closed_there() -> None:
    browser = HeldBrowser("a", "ses_0123456789abcdef")
    closed = "SESSION_STATE_CLOSED"
    assert unclaimed_close(browser, session_row("a")) is None
    assert unclaimed_close(browser, None) == UnclaimedClose(
        Unclaimed.NO_SESSION, CloseReason.OPEN_ABANDONED
    )
    assert unclaimed_close(browser, session_row("")) == UnclaimedClose(
        Unclaimed.UNPLACED, CloseReason.OPEN_ABANDONED
    )
    assert unclaimed_close(browser, session_row("b")) == UnclaimedClose(
        Unclaimed.OTHER_AGENT, CloseReason.OPEN_ABANDONED
    )
    assert unclaimed_close(browser, session_row("b", closed, "IDLE_TIMEOUT")) == UnclaimedClose(
        Unclaimed.CLOSED, CloseReason.OPEN_ABANDONED
    )
    # Its own agent's report of the close then keeps the session's reason.
    assert unclaimed_close(browser, session_row("a", closed, "AGENT_LOST")) == UnclaimedClose(
        Unclaimed.CLOSED, CloseReason.AGENT_LOST
    )


def test_links_follow_the_edges_public_address() -> None:
    plain = session_links("http://127.0.0.1:8080", "ses_0123456789abcdef")
    assert plain.cdp_url == "ws://127.0.0.1:8080/v1/sessions/ses_0123456789abcdef/cdp"
    assert plain.live_url == "http://127.0.0.1:8080/v1/sessions/ses_0123456789abcdef/live"
    behind = session_links("https://farm.example.com/browsers/", "ses_0123456789abcdef")
    assert behind.cdp_url == "wss://farm.example.com/browsers/v1/sessions/ses_0123456789abcdef/cdp"
    assert behind.live_url.startswith("https://farm.example.com/browsers/v1/sessions/")


def test_session_ids_have_one_form_and_others_name_no_session() -> None:
    session_id = new_session_id()
    assert checked_session_id(session_id) == session_id
    with pytest.raises(NotFound):
        checked_session_id("ses_../../etc")
    with pytest.raises(InvalidArgument):
        checked_session_id("")


def test_the_open_sessions_quota_refuses_at_the_limit_and_zero_is_unlimited() -> None:
    check_session_quota("acme", 1, TenantQuotas(max_open_sessions=2))
    with pytest.raises(ResourceExhausted, match="maxOpenSessions"):
        check_session_quota("acme", 2, TenantQuotas(max_open_sessions=2))
    check_session_quota("acme", 1000, TenantQuotas())


@pytest.mark.parametrize(
    ("open_sessions", "held"), [(1, "1 open session,"), (3, "3 open sessions,")]
)
def test_the_open_sessions_quota_error_counts_the_sessions_held(
    open_sessions: int, held: str
) -> None:
    with pytest.raises(ResourceExhausted) as refused:
        check_session_quota("acme", open_sessions, TenantQuotas(max_open_sessions=1))

    assert refused.value.message == (
        f"quota maxOpenSessions: tenant 'acme' has {held} its quota is 1; "
        "close one or ask an operator to raise it"
    )


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("TIMEOUT", DeadlineExceeded),
        ("RESULT_TOO_LARGE", ResourceExhausted),
        ("SELECTOR_NOT_FOUND", FailedPrecondition),
        ("BLOCKED_URL", FailedPrecondition),
        ("UPLOAD_FAILED", Unavailable),
    ],
)
def test_a_failed_command_answers_with_its_code_first(code: str, error: type[Exception]) -> None:
    mapped = command_error(tasks_pb2.TaskError(code=code, message="steps[0].click: none"))
    assert isinstance(mapped, error)
    assert str(mapped) == f"{code}: steps[0].click: none"


async def test_the_sweeps_closes_run_a_few_at_once_and_one_per_session() -> None:
    may_end = asyncio.Event()
    started: list[str] = []

    def close_of(session_id: str) -> Callable[[], Awaitable[None]]:
        async def close() -> None:
            started.append(session_id)
            await may_end.wait()
            if session_id == "b":
                raise RuntimeError("the agent is gone")

        return close

    closes = SweepCloses(at_once=2)
    tried = [closes.start(session_id, close_of(session_id)) for session_id in "aabc"]

    assert tried == [True, False, True, True]
    await assert_eventually(lambda: started == ["a", "b"])
    for _ in range(5):
        await asyncio.sleep(0)
    assert started == ["a", "b"], "a third close ran beside two"
    may_end.set()
    # A close that failed is logged; each session may be closed again once its close ended.
    await assert_eventually(lambda: closes.start("b", close_of("b")))
    await closes.stop(10)
    assert started == ["a", "b", "c", "b"]


async def test_the_sweeps_closes_left_after_the_grace_are_cancelled() -> None:
    never = asyncio.Event()
    closes = SweepCloses()
    closes.start("a", never.wait)

    await closes.stop(0)

    assert closes.start("a", never.wait), "the cancelled close still counts as under way"
    await closes.stop(0)


@pytest.mark.parametrize(
    ("message", "note"),
    [
        # The agent names itself: said once, not "agent-1: agent agent-1 has ...".
        (
            "agent agent-1 has no free place for a session",
            "agent agent-1 has no free place for a session",
        ),
        ("agent agent-1 is draining", "agent agent-1 is draining"),
        ("session s-1 withdrawn", "agent-1: session s-1 withdrawn"),
        ("agent agent-10 is draining", "agent-1: agent agent-10 is draining"),
    ],
)
def test_a_refusal_names_its_agent_once(message: str, note: str) -> None:
    assert refusal_note("agent-1", message) == note
