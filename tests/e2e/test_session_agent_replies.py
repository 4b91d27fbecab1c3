"""A session's agent answered with something the scheduler cannot read: one command fails.

The test answers on the agent's own order subject (with the agent's NATS login)
before the agent can, which holds the command at a gate page: the scheduler reads a
garbled reply from a live agent, whose heartbeats go on. One shared farm
(tests/e2e/conftest.py).
"""

import asyncio
import uuid

import nats
import pytest
from nats.aio.msg import Msg

from farm_cli.launcher.farm import LocalFarm
from farm_core.sessions import SessionOrder, order_subject
from tests.e2e.sessions_api import Sessions
from tests.pages import Site

pytestmark = pytest.mark.e2e

# Not a SessionReply: a field tag whose varint never ends.
GARBLED = b"\xff\xff\xff\xff"


async def test_a_garbled_reply_fails_that_command_and_the_session_goes_on(
    farm: LocalFarm, sessions: Sessions, site: Site
) -> None:
    session = sessions.create()
    agent = session["agentId"]
    gate = f"garbled-{uuid.uuid4().hex[:8]}"
    connection = await nats.connect(**farm.nats_access(agent).connect_options())
    try:

        async def garble(message: Msg) -> None:
            await message.respond(GARBLED)

        subscription = await connection.subscribe(order_subject(agent, SessionOrder.RUN), cb=garble)
        await connection.flush()
        # The agent runs it too, held at the gate until the garbled answer was taken.
        held = {"url": site.url(f"/gate/{gate}")}
        response = await asyncio.to_thread(
            sessions.http.post, f"/v1/sessions/{session['id']}:run", json=held
        )
        await subscription.unsubscribe()
        site.release(gate)

        assert response.status_code == 503, response.text
        message = response.json()["message"]
        assert f"agent {agent} answered the session run order with something that is not a " in (
            message
        )
        assert sessions.get(session["id"])["state"] == "SESSION_STATE_ACTIVE"
        result = await asyncio.to_thread(sessions.run, session["id"], url=site.url("/page"))
        assert result["finalUrl"] == site.url("/page")
    finally:
        site.release(gate)
        await connection.close()
        sessions.close(session["id"])
