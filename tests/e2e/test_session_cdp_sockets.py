"""An attached client's CDP socket at its edges: a message as large as Chromium takes, a client
gone without a close. One shared farm (tests/e2e/conftest.py).
"""

import json

import aiohttp
import pytest

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.sessions_api import Sessions, assert_drives

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]

LARGE_MESSAGE_BYTES = 20 * 1024 * 1024
"""Over the 16 MiB the agent once cut a client's message at, under Chromium's own 100 MiB."""


async def test_a_client_message_larger_than_16_mib_reaches_the_browser(
    farm: LocalFarm, sessions: Sessions
) -> None:
    # What Playwright's set_input_files of a 13 MB file, or a Fetch.fulfillRequest of
    # a large body, sends as one message; Chromium ignores the parameter it does not know.
    padded = {"id": 1, "method": "Browser.getVersion", "params": {"pad": "x" * LARGE_MESSAGE_BYTES}}
    headers = {"authorization": f"Bearer {farm.admin_key}"}
    with sessions.opened() as session:
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(session["cdpUrl"], headers=headers) as socket,
        ):
            await socket.send_str(json.dumps(padded))
            message = await socket.receive(timeout=60)
            assert message.type == aiohttp.WSMsgType.TEXT, (message.data, message.extra)
            assert "product" in json.loads(message.data)["result"]


def agent_errors(farm: LocalFarm, agent_id: str) -> list[str]:
    """The ERROR lines of an agent's log so far."""
    lines = (farm.log_dir / f"{agent_id}.log").read_text().splitlines()
    return [line for line in lines if '"level": "ERROR"' in line]


async def test_a_client_gone_without_a_close_leaves_no_error_in_the_agents_log(
    farm: LocalFarm, sessions: Sessions
) -> None:
    headers = {"authorization": f"Bearer {farm.admin_key}"}
    with sessions.opened() as session:
        before = agent_errors(farm, session["agentId"])
        async with aiohttp.ClientSession() as http:
            gone = await http.ws_connect(session["cdpUrl"], headers=headers)
            await assert_drives(gone)
            # Killed, or cut off: the connection ends without a close frame.
            connection = gone._response.connection
            assert connection is not None and connection.transport is not None
            connection.transport.abort()
            # A client attaching after another left is let through once the agent is
            # done with the leaving one, its relay's end included.
            async with http.ws_connect(session["cdpUrl"], headers=headers) as next_client:
                await assert_drives(next_client)
        assert agent_errors(farm, session["agentId"]) == before
