"""A session's navigation to an HTTP error answered with no body succeeds, as a task's does.

A session's browser is full Chromium, which shows its own error page for such an
answer (Playwright's goto then fails with ERR_HTTP_RESPONSE_CODE_FAILURE); a
task's headless shell shows the empty document. Both report the answer's status.
"""

from collections.abc import Callable

import pytest

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner
from farm_agent.errors import TaskFailure
from farm_agent.sessions.commands import run_command
from farm_agent.sessions.manager import SessionManager
from farm_agent.sessions.session import OpenSession
from farm_agent.settings import AgentSettings
from farm_core.task_errors import ErrorCode
from tests.integration.agent.conftest import HAVE_CHROMIUM, open_session
from tests.integration.agent.fakes import FakeUploader, keeper_of
from tests.pages import Site

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium"),
]


@pytest.fixture
async def session(manager: SessionManager) -> OpenSession:
    return await open_session(manager)


async def run(session: OpenSession, command: sessions_pb2.SessionCommand) -> tasks_pb2.TaskResult:
    command.timeout_ms = 15_000
    return await run_command(session, command, keeper_of(FakeUploader()), 100_000)


def content_command(url: str = "") -> sessions_pb2.SessionCommand:
    command = sessions_pb2.SessionCommand(url=url)
    command.content.SetInParent()
    return command


@pytest.mark.parametrize("status", [404, 500])
async def test_an_empty_error_answer_is_the_commands_status_as_a_tasks(
    session: OpenSession,
    site: Site,
    shared_pool: BrowserPool,
    make_settings: Callable[..., AgentSettings],
    status: int,
) -> None:
    url = site.url(f"/empty/{status}")
    task = tasks_pb2.TaskSpec(url=url, timeout_ms=15_000)
    task.content.SetInParent()
    expected = (await BrowserSpecRunner(shared_pool, make_settings()).run(task)).result

    result = await run(session, content_command(url))

    assert (result.http_status, result.final_url) == (status, url)
    assert (result.title, result.text) == (expected.title, expected.text)
    assert expected.http_status == status


async def test_the_next_command_still_finds_the_page_at_that_url(
    session: OpenSession, site: Site
) -> None:
    url = site.url("/empty/404")
    await run(session, content_command(url))
    result = await run(session, content_command())
    assert result.final_url == url


async def test_going_back_to_an_empty_error_answer_succeeds_with_its_status(
    session: OpenSession, site: Site
) -> None:
    await run(session, content_command(site.url("/empty/404")))
    await run(session, content_command(site.url("/page")))
    back = content_command()
    back.steps.add().back = True
    result = await run(session, back)
    assert (result.http_status, result.final_url) == (404, site.url("/empty/404"))


async def test_with_fail_on_http_error_it_is_an_http_error(
    session: OpenSession, site: Site
) -> None:
    url = site.url("/empty/503")
    command = content_command(url)
    command.fail_on_http_error = True
    with pytest.raises(TaskFailure) as caught:
        await run(session, command)
    assert caught.value.code is ErrorCode.HTTP_ERROR
    assert url in caught.value.message


async def test_an_empty_204_fails_as_it_does_in_a_task(session: OpenSession, site: Site) -> None:
    # 204 No Content leaves the page where it was, in both browsers: nothing was shown.
    with pytest.raises(TaskFailure) as caught:
        await run(session, content_command(site.url("/empty/204")))
    assert caught.value.code is ErrorCode.NAVIGATION_FAILED
