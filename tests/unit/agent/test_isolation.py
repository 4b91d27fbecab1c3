"""Which tasks may run in a warm context (choose_isolation), and the field that says no."""

import pytest
from google.protobuf.json_format import ParseDict

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.isolation import choose_isolation, needs_own_context

SCREENSHOT = {"url": "https://example.com/", "screenshot": {}}


def spec(**fields: object) -> tasks_pb2.TaskSpec:
    """A screenshot task with these JSON fields on top."""
    return ParseDict({**SCREENSHOT, **fields}, tasks_pb2.TaskSpec())


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"script": {"source": "() => 1"}, "screenshot": None}, "script"),
        ({"steps": [{"click": "a"}, {"evaluate": "() => 1"}]}, "steps[1].evaluate"),
        ({"profile": "shopper"}, "profile"),
        ({"profile": "shopper", "saveProfile": True}, "profile"),
        ({"device": "iPhone 13"}, "device"),
        ({"screencast": {}}, "screencast"),
        ({"collect": {"har": True}}, "collect.har"),
        (
            {"setup": {"cookies": [{"name": "a", "value": "b", "url": "https://x/"}]}},
            "setup.cookies",
        ),
        ({"setup": {"userAgent": "bot"}}, "setup.userAgent"),
        ({"setup": {"extraHeaders": {"x": "y"}}}, "setup.extraHeaders"),
        ({"setup": {"locale": "de-DE"}}, "setup.locale"),
        ({"setup": {"timezone": "Europe/Berlin"}}, "setup.timezone"),
        ({"setup": {"javascriptDisabled": True}}, "setup.javascriptDisabled"),
        ({"setup": {"blockTrackers": True}}, "setup.blockTrackers"),
    ],
)
def test_a_task_with_state_code_or_setup_needs_its_own_context(
    fields: dict[str, object], field: str
) -> None:
    task = {name: value for name, value in {**SCREENSHOT, **fields}.items() if value is not None}
    parsed = ParseDict(task, tasks_pb2.TaskSpec())
    assert needs_own_context(parsed) == field
    choice = choose_isolation(parsed, "warm", 4)
    assert (choice.warm, choice.reason) == (False, field)


def test_a_plain_task_runs_warm_unless_told_otherwise() -> None:
    plain = spec(steps=[{"click": "a"}, {"waitFor": "#x"}], collect={"console": True})
    assert choose_isolation(plain, "warm", 4).warm
    assert choose_isolation(spec(isolation="ISOLATION_WARM"), "context", 4).warm
    assert choose_isolation(spec(isolation="ISOLATION_CONTEXT"), "warm", 4).reason == "isolation"
    assert choose_isolation(plain, "context", 4).reason == "FARM_AGENT_ISOLATION"
    assert choose_isolation(plain, "warm", 0).reason == "FARM_AGENT_WARM_CONTEXTS"
