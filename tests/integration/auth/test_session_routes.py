"""The edge check of a session's browser while nats-server stalls (SIGSTOP, a full disk).

Reading which agent holds a session waited on the stalled server past Envoy's 2 s
wait for auth, so every attach failed at the edge although auth counted the key's
rate locally. Now the check asks NATS nothing for a moment after a call of its went
unanswered: an attach to a session it read lately goes to that agent, any other
is refused as unavailable, naming NATS.
"""

from pathlib import Path

import nats
import pytest

from farm.queue.v1 import queue_pb2
from farm_auth import authz
from farm_core.sessions import sessions_bucket
from tests.conftest import NatsServer
from tests.helpers import assert_eventually
from tests.integration.auth.conftest import (
    Auth,
    auth_settings,
    new_admin_key,
    running_auth,
    wait_for_routes,
)

pytestmark = pytest.mark.integration

READ_LATELY = "ses_00000000000000a1"
NEVER_READ = "ses_00000000000000b2"
AGENTS = {READ_LATELY: "127.0.0.1:7151", NEVER_READ: "127.0.0.1:7152"}
UNAVAILABLE = 14
# How long the check asks NATS nothing after a call went unanswered (NATS_PAUSE_SECONDS,
# 2 s): either way the never-read session is refused naming NATS; the shorter pause only
# lets the check ask again sooner once NATS answers.
TEST_PAUSE_SECONDS = 0.5


async def attach(auth: Auth, session_id: str) -> tuple[int, str, str]:
    """Envoy's check of a CDP attach with the admin key: status, agent named, message."""
    reply = await auth.check(
        f"Bearer {auth.admin_key}", path=f"/v1/sessions/{session_id}/cdp", method="GET"
    )
    if reply.allowed:
        return 200, reply.headers.get("x-farm-agent", ""), ""
    return reply.http_status, reply.headers.get("x-farm-agent", ""), reply.message


async def test_a_stalled_nats_server_leaves_attaches_to_sessions_read_lately(
    farm_home: Path, fresh_nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(authz, "NATS_PAUSE_SECONDS", TEST_PAUSE_SECONDS)
    settings = auth_settings(farm_home, "", new_admin_key(), NATS_URL=fresh_nats_server.url)
    nc = await nats.connect(fresh_nats_server.url)
    try:
        routes = await sessions_bucket(nc.jetstream())
        for session_id, endpoint in AGENTS.items():
            route = queue_pb2.SessionRoute(
                session_id=session_id,
                tenant=settings.bootstrap_tenant,
                agent_id="agent-1",
                endpoint=endpoint,
            )
            await routes.put(session_id, route.SerializeToString())
    finally:
        await nc.close()

    async with running_auth(settings) as auth:
        await wait_for_routes(auth)
        assert await attach(auth, READ_LATELY) == (200, AGENTS[READ_LATELY], "")

        async with fresh_nats_server.stalled():
            lately = await attach(auth, READ_LATELY)
            never = await attach(auth, NEVER_READ)

        # NATS answers again: the session never read is found once the pause is over.
        async def found() -> bool:
            return await attach(auth, NEVER_READ) == (200, AGENTS[NEVER_READ], "")

        await assert_eventually(found, message="the route was not read after NATS came back")

    assert lately == (200, AGENTS[READ_LATELY], "")
    status, agent, message = never
    assert (status, agent) == (503, ""), message
    assert "NATS did not answer" in message
