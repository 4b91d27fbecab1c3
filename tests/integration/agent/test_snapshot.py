"""The snapshot action in real Chromium: the accessibility tree with element references."""

import re
from collections.abc import Callable

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner
from farm_agent.settings import AgentSettings
from tests.integration.agent.conftest import SettingsFactory
from tests.pages import Site

pytestmark = pytest.mark.integration


@pytest.fixture
def runner(
    shared_pool: BrowserPool, make_settings: Callable[..., AgentSettings]
) -> BrowserSpecRunner:
    return BrowserSpecRunner(shared_pool, make_settings(max_result_text_bytes=80))


async def test_snapshot_lists_roles_and_names_with_references(
    shared_pool: BrowserPool, make_settings: SettingsFactory, site: Site
) -> None:
    runner = BrowserSpecRunner(shared_pool, make_settings())
    capture = await runner.run(
        tasks_pb2.TaskSpec(
            url=site.url("/form"), timeout_ms=10_000, snapshot=tasks_pb2.SnapshotOptions()
        )
    )
    tree = capture.result.text
    assert re.search(r'- button "Go" \[ref=e\d+\]', tree), tree
    assert re.search(r"- textbox \[ref=e\d+\]", tree), tree
    assert capture.artifacts == []
    assert capture.result.title == "Form"


async def test_a_large_snapshot_is_cut_at_the_result_limit(
    runner: BrowserSpecRunner, site: Site
) -> None:
    capture = await runner.run(
        tasks_pb2.TaskSpec(
            url=site.url("/page"), timeout_ms=10_000, snapshot=tasks_pb2.SnapshotOptions()
        )
    )
    assert 0 < len(capture.result.text.encode()) <= 80
