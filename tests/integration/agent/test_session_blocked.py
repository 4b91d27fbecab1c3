"""A session command lists the egress refusals of requests its pages made while it ran."""

import pytest

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_agent.errors import TaskFailure
from farm_agent.sessions.commands import run_command
from farm_agent.sessions.manager import SessionManager
from farm_agent.sessions.session import OpenSession
from farm_core.task_errors import ErrorCode
from tests.integration.agent.conftest import open_session
from tests.integration.agent.fakes import FakeUploader, keeper_of

pytestmark = pytest.mark.integration

REFUSED = "http://169.254.169.254"


@pytest.fixture
async def session(manager: SessionManager) -> OpenSession:
    return await open_session(manager, tasks_pb2.Viewport(width=640, height=480))


async def run(session: OpenSession, order: sessions_pb2.SessionCommand) -> tasks_pb2.TaskResult:
    order.timeout_ms = order.timeout_ms or 15_000
    return await run_command(session, order, keeper_of(FakeUploader()), 100_000)


async def test_the_late_favicon_of_a_refused_page_is_not_the_next_commands(
    session: OpenSession,
) -> None:
    with pytest.raises(TaskFailure) as caught:
        await run(session, sessions_pb2.SessionCommand(url=f"{REFUSED}/"))
    assert caught.value.code is ErrorCode.BLOCKED_URL

    # Chromium asks for the refusal page's favicon a moment after it loaded, while
    # this command (sent at once) waits.
    waiting = sessions_pb2.SessionCommand()
    waiting.steps.add().wait.ms = 1000
    result = await run(session, waiting)

    assert f"{REFUSED}/favicon.ico" in [blocked.target for blocked in session.egress.blocked]
    assert list(result.blocked_requests) == []


async def test_a_refused_request_the_page_makes_during_the_command_is_listed(
    session: OpenSession,
) -> None:
    with pytest.raises(TaskFailure):
        await run(session, sessions_pb2.SessionCommand(url=f"{REFUSED}/"))
    fetching = sessions_pb2.SessionCommand()
    fetching.script.source = f"() => fetch('{REFUSED}/data?key=hush').then(() => 1, () => 0)"
    result = await run(session, fetching)
    assert f"{REFUSED}/data" in [blocked.target for blocked in result.blocked_requests]
