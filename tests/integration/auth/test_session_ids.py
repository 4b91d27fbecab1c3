"""The edge check of a session path whose id no session could have, with a real nats-server.

Such an id is no NATS key: reading its route failed as if NATS were down, a 503 that
Envoy gives the client as "auth did not answer" and counts against the auth check's
host (outlier ejection after five), so any key with the scope `sessions` could
knock auth's check out of the edge.
"""

from pathlib import Path

import pytest

from tests.conftest import NatsServer
from tests.integration.auth.conftest import (
    auth_settings,
    new_admin_key,
    running_auth,
    wait_for_routes,
)

pytestmark = pytest.mark.integration

NOT_NATS_KEYS = ["a;b", "ses_1%2F..%2Fses_2", "*", ">", "a b", "ses_0123456789abcdef.x"]


async def test_a_session_id_that_is_no_nats_key_is_404_not_503(
    farm_home: Path, database_url: str, nats_server: NatsServer
) -> None:
    settings = auth_settings(farm_home, database_url, new_admin_key(), NATS_URL=nats_server.url)
    async with running_auth(settings) as auth:
        await wait_for_routes(auth)
        for session_id in NOT_NATS_KEYS:
            for part in ("cdp", "live"):
                reply = await auth.check(
                    f"Bearer {auth.admin_key}",
                    path=f"/v1/sessions/{session_id}/{part}",
                    method="GET",
                )
                assert (reply.http_status, reply.code) == (404, 5), (session_id, reply.body)
