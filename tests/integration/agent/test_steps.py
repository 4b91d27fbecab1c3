"""The toolbox's steps in real Chromium: hover, select, check, uncheck, goto, wait, evaluate.

Each step is shown to do what it says on /widgets of the test site, and a failing
step to name its index, its field and its selector.
"""

import asyncio
from collections.abc import Callable

import pytest
from google.protobuf import json_format

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner
from farm_agent.errors import TaskFailure
from farm_agent.sessions.commands import run_command
from farm_agent.sessions.manager import SessionManager
from farm_agent.settings import AgentSettings
from farm_core.task_errors import ErrorCode
from tests.integration.agent.conftest import open_session
from tests.integration.agent.fakes import FakeUploader, keeper_of
from tests.pages import Site

pytestmark = pytest.mark.integration


@pytest.fixture
def runner(
    shared_pool: BrowserPool, make_settings: Callable[..., AgentSettings]
) -> BrowserSpecRunner:
    return BrowserSpecRunner(shared_pool, make_settings())


# A step that can never succeed waits out the task's time left (less a margin): a short
# task fails soon, and still leaves a loaded machine ample time to load /widgets.
NEVER_MS = 3000


def widgets(
    site: Site, steps: list[dict[str, object]], timeout_ms: int = 10000, **fields: str
) -> tasks_pb2.TaskSpec:
    """A task on /widgets that runs `steps`, then extracts `fields` (name: selector)."""
    return json_format.ParseDict(
        {
            "url": site.url("/widgets"),
            "timeoutMs": timeout_ms,
            "steps": steps,
            "extract": {"fields": fields or {"state": "#state"}},
        },
        tasks_pb2.TaskSpec(),
    )


async def extracted(runner: BrowserSpecRunner, spec: tasks_pb2.TaskSpec) -> dict[str, object]:
    capture = await runner.run(spec)
    return dict(json_format.MessageToDict(capture.result.json))


async def failure_of(runner: BrowserSpecRunner, spec: tasks_pb2.TaskSpec) -> TaskFailure:
    with pytest.raises(TaskFailure) as caught:
        await runner.run(spec)
    return caught.value


async def test_hover_opens_a_menu_that_shows_on_hover_only(
    runner: BrowserSpecRunner, site: Site
) -> None:
    # A click on the item needs it visible: only the hover before makes it so.
    hovered = widgets(site, [{"hover": "#menu"}, {"click": "#item"}])
    assert "state" in await extracted(runner, hovered)
    failure = await failure_of(runner, widgets(site, [{"click": "#item"}], timeout_ms=NEVER_MS))
    assert failure.code is ErrorCode.SELECTOR_NOT_FOUND
    assert failure.message.startswith('steps[0].click: "#item" matches, but it is not visible')


async def test_select_chooses_by_value_or_by_label(runner: BrowserSpecRunner, site: Site) -> None:
    by_value = widgets(site, [{"select": {"selector": "#size", "value": "l"}}])
    assert await extracted(runner, by_value) == {"state": "l,false,true"}
    by_label = widgets(site, [{"select": {"selector": "#size", "label": "Medium"}}])
    assert await extracted(runner, by_label) == {"state": "m,false,true"}


async def test_check_and_uncheck_change_check_boxes(runner: BrowserSpecRunner, site: Site) -> None:
    spec = widgets(site, [{"check": "#agree"}, {"uncheck": "#news"}])
    assert await extracted(runner, spec) == {"state": "s,true,false"}


async def test_goto_goes_to_another_page_and_reports_it(
    runner: BrowserSpecRunner, site: Site
) -> None:
    spec = widgets(site, [{"goto": site.url("/form")}, {"fill": {"selector": "#q", "value": "x"}}])
    spec.extract.fields.clear()
    spec.extract.fields["out"] = "#out"
    capture = await runner.run(spec)
    assert (capture.result.final_url, capture.result.title) == (site.url("/form"), "Form")
    assert capture.result.http_status == 200


async def test_goto_a_page_that_answers_404_reports_its_status(
    runner: BrowserSpecRunner, site: Site
) -> None:
    spec = widgets(site, [{"goto": site.url("/status/404")}])
    spec.extract.fields["state"] = "body"
    capture = await runner.run(spec)
    assert capture.result.http_status == 404
    spec.fail_on_http_error = True
    failure = await failure_of(runner, spec)
    assert failure.code is ErrorCode.HTTP_ERROR


async def test_a_goto_the_egress_guard_refuses_fails_with_blocked_url_naming_the_step(
    runner: BrowserSpecRunner, site: Site
) -> None:
    # The shared pool opens 127.0.0.0/8 only: IPv6 loopback stays refused.
    spec = widgets(site, [{"click": "#agree"}, {"goto": "http://[::1]:8080/"}])
    failure = await failure_of(runner, spec)
    assert failure.code is ErrorCode.BLOCKED_URL
    assert failure.message.startswith("steps[1].goto: ")
    assert "loopback" in failure.message


async def test_a_goto_to_another_scheme_is_blocked_url(
    runner: BrowserSpecRunner, site: Site
) -> None:
    failure = await failure_of(runner, widgets(site, [{"goto": "file:///etc/passwd"}]))
    assert failure.code is ErrorCode.BLOCKED_URL
    assert failure.message.startswith("steps[0].goto: the scheme 'file' is refused")


async def test_wait_for_text_waits_until_it_shows(runner: BrowserSpecRunner, site: Site) -> None:
    spec = widgets(site, [{"click": "#later"}, {"wait": {"text": "Thank you for"}}], late="#late")
    assert await extracted(runner, spec) == {"late": "Thank you for waiting"}


async def test_wait_for_text_that_never_shows_names_the_text(
    runner: BrowserSpecRunner, site: Site
) -> None:
    spec = widgets(site, [{"wait": {"text": "never there"}}], timeout_ms=NEVER_MS)
    failure = await failure_of(runner, spec)
    assert failure.code is ErrorCode.SELECTOR_NOT_FOUND
    assert (
        failure.message
        == 'steps[0].wait.text: the text "never there" did not become visible in time'
    )


async def test_wait_for_network_idle_waits_for_the_pages_fetch(
    runner: BrowserSpecRunner, site: Site
) -> None:
    # The page has been idle a while before the click: the wait is for the click's fetch
    # (Playwright's "networkidle" load state, reached once per page, would not wait).
    steps: list[dict[str, object]] = [
        {"wait": {"ms": 700}},
        {"click": "#load"},
        {"wait": {"networkIdle": True}},
    ]
    spec = widgets(site, steps, loaded="#loaded")
    assert await extracted(runner, spec) == {"loaded": "loaded"}


async def test_a_session_command_waits_for_network_idle_after_a_click_in_the_one_before(
    manager: SessionManager, site: Site
) -> None:
    session = await open_session(manager, tasks_pb2.Viewport(width=1280, height=800))
    keeper = keeper_of(FakeUploader())
    click = sessions_pb2.SessionCommand(url=site.url("/widgets"), timeout_ms=10_000)
    click.steps.add().wait.ms = 700
    click.steps.add().click = "#load"
    await run_command(session, click, keeper, 100_000)
    wait = sessions_pb2.SessionCommand(timeout_ms=10_000)
    wait.steps.add().wait.network_idle = True
    wait.extract.fields["loaded"] = "#loaded"
    result = await run_command(session, wait, keeper, 100_000)
    assert json_format.MessageToDict(result.json) == {"loaded": "loaded"}


async def test_extract_reads_what_an_earlier_command_typed_checked_and_chose(
    manager: SessionManager, site: Site
) -> None:
    # The attributes keep the page's initial state; @value, @checked and @selected
    # are the controls' live state, as a user sees it.
    session = await open_session(manager, tasks_pb2.Viewport(width=1280, height=800))
    keeper = keeper_of(FakeUploader())
    act = json_format.ParseDict(
        {
            "url": site.url("/widgets"),
            "timeoutMs": 10_000,
            "steps": [
                {"fill": {"selector": "#name", "value": "typed"}},
                {"check": "#agree"},
                {"uncheck": "#news"},
                {"select": {"selector": "#size", "value": "m"}},
            ],
        },
        sessions_pb2.SessionCommand(),
    )
    await run_command(session, act, keeper, 100_000)
    read = sessions_pb2.SessionCommand(timeout_ms=10_000)
    read.extract.fields.update(
        {
            "name": "#name@value",
            "nameAsTyped": "#name@VALUE",
            "agree": "#agree@checked",
            "news": "#news@checked",
            "size": "#size@value",
            "chosen": "#size option@selected[]",
            "values": "input@value[]",
            # Other attributes, and these on other elements, stay the attribute's text.
            "kind": "#name@data-kind",
            "notAControl": "#state@value",
        }
    )
    result = await run_command(session, read, keeper, 100_000)
    assert json_format.MessageToDict(result.json) == {
        "name": "typed",
        "nameAsTyped": "typed",
        "agree": True,
        "news": False,
        "size": "m",
        "chosen": [False, True, False],
        "values": ["on", "on", "on", "typed"],
        "kind": "text",
        "notAControl": None,
    }


async def test_wait_for_network_idle_that_never_comes_names_the_open_request(
    runner: BrowserSpecRunner, site: Site
) -> None:
    steps: list[dict[str, object]] = [
        {"evaluate": "void fetch('/gate/never-idle')"},
        {"wait": {"networkIdle": True}},
    ]
    try:
        failure = await failure_of(runner, widgets(site, steps, timeout_ms=NEVER_MS))
    finally:
        site.release("never-idle")
    assert failure.code is ErrorCode.TIMEOUT
    assert failure.message == (
        "steps[1].wait.networkIdle: the network did not become idle in time; "
        f"1 request(s) still open: {site.url('/gate/never-idle')}"
    )


async def test_wait_for_a_time_lets_the_page_go_on(runner: BrowserSpecRunner, site: Site) -> None:
    spec = widgets(site, [{"click": "#later"}, {"wait": {"ms": 1500}}], late="#late")
    assert await extracted(runner, spec) == {"late": "Thank you for waiting"}


async def test_a_wait_longer_than_the_time_left_fails_at_once_with_timeout(
    runner: BrowserSpecRunner, site: Site
) -> None:
    failure = await failure_of(runner, widgets(site, [{"wait": {"ms": 60000}}]))
    assert failure.code is ErrorCode.TIMEOUT
    assert failure.message.startswith("steps[0].wait.ms: 60000 ms is more than the attempt has")


async def test_a_promise_that_never_settles_fails_naming_its_field(
    runner: BrowserSpecRunner, site: Site
) -> None:
    # Playwright's evaluate has no time limit: without one of the agent's, the attempt
    # ran out as "the task did not finish within its 3 s", naming no field.
    never = "() => new Promise(() => {})"
    # Side by side, each in a context of its own: each waits out its time left.
    cases = (
        (widgets(site, [{"evaluate": never}], timeout_ms=NEVER_MS), "steps[0].evaluate"),
        (script_task(site, never), "script.source"),
    )
    failures = await asyncio.gather(*(failure_of(runner, spec) for spec, _ in cases))
    for failure, (_, field) in zip(failures, cases, strict=True):
        assert failure.code is ErrorCode.TIMEOUT
        assert failure.message.startswith(
            f"{field}: the function did not return, or its promise settle, within the"
        )


def script_task(site: Site, source: str) -> tasks_pb2.TaskSpec:
    """A task on /widgets whose action is the script `source`."""
    return json_format.ParseDict(
        {"url": site.url("/widgets"), "timeoutMs": NEVER_MS, "script": {"source": source}},
        tasks_pb2.TaskSpec(),
    )


async def test_evaluate_runs_a_function_in_the_page(runner: BrowserSpecRunner, site: Site) -> None:
    spec = widgets(
        site,
        [{"evaluate": "() => { document.getElementById('late').textContent = 'from evaluate'; }"}],
        late="#late",
    )
    assert await extracted(runner, spec) == {"late": "from evaluate"}


async def test_an_evaluate_that_throws_is_script_failed_naming_the_step(
    runner: BrowserSpecRunner, site: Site
) -> None:
    spec = widgets(site, [{"hover": "#menu"}, {"evaluate": "() => { throw new Error('no'); }"}])
    failure = await failure_of(runner, spec)
    assert failure.code is ErrorCode.SCRIPT_FAILED
    assert failure.message.startswith("steps[1].evaluate: ")
    assert "no" in failure.message


FAILING_STEPS: list[tuple[dict[str, object], str]] = [
    ({"hover": "#x"}, 'steps[3].hover: no element matches "#x"'),
    ({"check": "#x"}, 'steps[3].check: no element matches "#x"'),
    ({"uncheck": "#x"}, 'steps[3].uncheck: no element matches "#x"'),
    ({"select": {"selector": "#x", "value": "m"}}, "steps[3].select.selector: no element"),
    ({"check": "#locked"}, 'steps[3].check: "#locked" matches, but it is not enabled'),
    ({"hover": "#hidden"}, 'steps[3].hover: "#hidden" matches, but it is not visible'),
    (
        {"select": {"selector": "#size", "value": "xl"}},
        'steps[3].select.selector: "#size" matches, but it has no option with value "xl"',
    ),
    (
        {"select": {"selector": "#size", "label": "Huge"}},
        'steps[3].select.selector: "#size" matches, but it has no option labelled "Huge"',
    ),
    ({"check": "#late"}, "steps[3].check: Error: Not a checkbox or radio button"),
]
"""A step that fails on /widgets, and how its failure's message begins."""


async def test_a_failing_step_names_its_index_field_and_selector(
    runner: BrowserSpecRunner, site: Site
) -> None:
    # The tasks run side by side, each waiting out its time left in a context of its own.
    # 8 s, so that the runner's margin before the attempt's deadline is its full 2 s:
    # with nine contexts loading at once on a loaded machine, 5 s (a 1.25 s margin) let
    # the driver's report of an ended wait come after the deadline (TIMEOUT).
    async def failure_after(step: dict[str, object]) -> tuple[ErrorCode, str] | None:
        waits: list[dict[str, object]] = [{"wait": {"ms": 1}}] * 3
        spec = widgets(site, [*waits, step], timeout_ms=8_000)
        try:
            await runner.run(spec)
        except TaskFailure as failure:
            return failure.code, failure.message
        return None

    failures = await asyncio.gather(*(failure_after(step) for step, _ in FAILING_STEPS))
    unexpected = [
        (step, failure)
        for (step, message), failure in zip(FAILING_STEPS, failures, strict=True)
        if failure is None
        or failure[0] is not ErrorCode.SELECTOR_NOT_FOUND
        or not failure[1].startswith(message)
    ]
    assert unexpected == []
