"""A session's CDP endpoint as an attached client leaves: downloads are refused again.

Chromium resets the download behaviors a leaving client's connection set, so the
agent denies downloads again in every context; with the browser gone there is
nothing left to deny, and that is no error.
"""

import asyncio
import json
import logging
import os
import signal

import aiohttp
import pytest

from farm_agent.sessions import endpoints as endpoints_module
from farm_agent.sessions.bridge import CdpClient
from farm_agent.sessions.endpoints import SessionEndpoints
from farm_agent.sessions.manager import SessionManager
from farm_core.identity import IDENTITY_HEADER, Identity
from farm_core.scopes import Scope
from tests.helpers import TEST_SIGNER
from tests.integration.agent.conftest import HAVE_CHROMIUM, open_session

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium"),
]

LEAVING_SECONDS = 10.0
"""How long the agent may take to be done with a client that left."""


def vouched() -> dict[str, str]:
    """Headers of a request Envoy let through for a key of tenant "acme" (open_session's)."""
    identity = Identity("acme", "key_acme", frozenset({Scope.SESSIONS}))
    return {IDENTITY_HEADER: TEST_SIGNER.encode(identity)}


async def test_a_client_cut_off_by_its_browsers_death_leaves_no_error_about_downloads(
    manager: SessionManager, endpoints: SessionEndpoints, caplog: pytest.LogCaptureFixture
) -> None:
    session = await open_session(manager)
    url = f"ws://127.0.0.1:{endpoints.port}/v1/sessions/{session.session_id}/cdp"
    caplog.set_level(logging.DEBUG, logger=endpoints_module.log.name)
    async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=vouched()) as socket:
        await socket.send_str(json.dumps({"id": 1, "method": "Target.getTargets"}))
        assert json.loads((await socket.receive(timeout=10)).data)["id"] == 1
        [client] = [client for client in session.clients if isinstance(client, CdpClient)]
        # As a crash or the OOM killer would: the relay ends with the browser's connection.
        os.killpg(session.browser.process.pid, signal.SIGKILL)
        async with asyncio.timeout(LEAVING_SECONDS):
            await client.settled.wait()
    said = [
        (record.levelname, record.getMessage())
        for record in caplog.records
        if record.name == endpoints_module.log.name and record.levelno >= logging.INFO
    ]
    assert not [message for message in said if "download" in message[1]], said
