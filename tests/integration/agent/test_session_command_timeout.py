"""A session command that runs out of its time limit after its navigation names `timeoutMs`."""

import pytest

from farm.sessions.v1 import sessions_pb2
from farm_agent.errors import TaskFailure
from farm_agent.sessions.commands import run_command
from farm_agent.sessions.manager import SessionManager
from farm_core.task_errors import ErrorCode
from tests.integration.agent.conftest import HAVE_CHROMIUM, open_session
from tests.integration.agent.fakes import FakeUploader, keeper_of
from tests.pages import Site

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium"),
]


async def test_a_command_on_a_page_that_hangs_after_its_load_names_timeout_ms(
    manager: SessionManager, site: Site
) -> None:
    # The navigation ends; reading the content then waits on the spinning page until the
    # command's own limit (it said only "the command did not finish within its 3 s").
    session = await open_session(manager)
    command = sessions_pb2.SessionCommand(url=site.url("/hang-after-load"), timeout_ms=2000)
    command.content.SetInParent()

    with pytest.raises(TaskFailure) as caught:
        await run_command(session, command, keeper_of(FakeUploader()), 100_000)

    assert caught.value.code is ErrorCode.TIMEOUT
    assert caught.value.message == "timeoutMs: the command did not finish within its 2 s"
