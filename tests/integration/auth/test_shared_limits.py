"""Two auth replicas on one NATS and database count a key's rate and refused keys once."""

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from farm.auth.v1 import auth_pb2
from farm_auth.server import AuthService
from tests.conftest import NatsServer
from tests.helpers import assert_eventually
from tests.integration.auth.conftest import (
    RPC_TIMEOUT,
    Auth,
    auth_settings,
    check_from,
    denial,
    new_admin_key,
    running_auth,
)

pytestmark = pytest.mark.integration

OK = 0
RESOURCE_EXHAUSTED = 8
HTTP_TOO_MANY_REQUESTS = 429
# How long Envoy waits for Check (envoy.yaml.j2, ext_authz's timeout) before it answers
# 503 "the auth service did not answer" itself.
EDGE_CHECK_TIMEOUT = 2.0


@contextlib.asynccontextmanager
async def two_replicas(farm_home: Path, nats_url: str) -> AsyncIterator[tuple[Auth, Auth]]:
    """Two auth services on the same SQLite file and NATS, each counting farm-wide."""
    admin_key = new_admin_key()
    settings = auth_settings(
        farm_home,
        "",
        admin_key,
        NATS_URL=nats_url,
        failed_auth_limit=3,
        # No key cache: a changed rate limit is in force in both replicas at once.
        key_cache_seconds=0,
    )
    first, second = AuthService(settings), AuthService(settings)
    async with running_auth(settings, first) as one, running_auth(settings, second) as two:
        await assert_eventually(
            lambda: first.limits.shared and second.limits.shared,
            within=15,
            message="the replicas did not reach NATS",
        )
        yield one, two


async def test_two_replicas_give_a_key_its_rate_once(
    farm_home: Path, nats_server: NatsServer
) -> None:
    async with two_replicas(farm_home, nats_server.url) as (one, two):
        created = await one.create_key(one.admin_key, tenant="acme")
        await one.keys.UpdateApiKey(
            auth_pb2.UpdateApiKeyRequest(
                id=created.api_key.id, rate_limit_per_second=1, rate_limit_burst=3
            ),
            metadata=await one.as_key(one.admin_key),
            timeout=RPC_TIMEOUT,
        )
        started = time.monotonic()
        replies = [await replica.check(f"Bearer {created.secret}") for replica in (one, two) * 4]
        elapsed = time.monotonic() - started

    codes = [reply.code for reply in replies]
    allowed = codes.count(OK)
    # Per replica, 8 calls alternated would let 3 + 3 through; shared, the burst of 3
    # plus what refilled at 1 a second while the calls were made.
    assert 3 <= allowed <= 3 + math.ceil(elapsed), codes
    assert codes[:3] == [OK] * 3
    assert set(codes[allowed:]) <= {OK, RESOURCE_EXHAUSTED}
    assert any("over its rate limit of 1" in reply.message for reply in replies)


async def test_refusals_at_both_replicas_block_the_address_at_both(
    farm_home: Path, nats_server: NatsServer
) -> None:
    address = "198.51.100.7"
    async with two_replicas(farm_home, nats_server.url) as (one, two):
        # The limit is 3: four refusals, alternated, block the address farm-wide.
        refusals = [
            await check_from(replica, address, "bf_wrong-guess") for replica in (one, two) * 2
        ]

        async def blocked_at_both() -> bool:
            for replica in (one, two):
                reply = await check_from(replica, address, one.admin_key)
                if reply.code != RESOURCE_EXHAUSTED:
                    return False
            return True

        # The replica that did not count the fourth refusal learns of it by its watch.
        await assert_eventually(blocked_at_both, message="the address is not blocked at both")
        blocked = await check_from(two, address, one.admin_key)
        elsewhere = await check_from(two, "198.51.100.8", one.admin_key)

    assert [denial(reply)[0] for reply in refusals] == [401] * 4
    status, headers = denial(blocked)
    assert status == HTTP_TOO_MANY_REQUESTS
    assert int(headers["retry-after"]) > 0
    assert elsewhere.code == OK


async def test_two_replicas_leasing_a_busy_keys_rate_never_let_more_than_it_through(
    farm_home: Path, nats_server: NatsServer
) -> None:
    async with two_replicas(farm_home, nats_server.url) as (one, two):
        created = await one.create_key(one.admin_key, tenant="acme")
        # 50 a second with a lease of 0.1 s: each replica takes up to 5 requests at once.
        await one.keys.UpdateApiKey(
            auth_pb2.UpdateApiKeyRequest(
                id=created.api_key.id, rate_limit_per_second=50, rate_limit_burst=10
            ),
            metadata=await one.as_key(one.admin_key),
            timeout=RPC_TIMEOUT,
        )
        started = time.monotonic()
        replies = [await replica.check(f"Bearer {created.secret}") for replica in (one, two) * 20]
        elapsed = time.monotonic() - started

    allowed = [reply.code for reply in replies].count(OK)
    # Leased or not, the two replicas together let through the burst and what refilled,
    # less at most what each still held unused when the calls stopped.
    assert 10 - 2 * 5 < allowed <= 10 + math.ceil(elapsed * 50), allowed
    assert any("over its rate limit of 50" in reply.message for reply in replies)


async def test_a_stalled_nats_server_does_not_hold_checks_past_the_edges_wait(
    farm_home: Path, fresh_nats_server: NatsServer
) -> None:
    """A nats-server that takes the connection but answers nothing (SIGSTOP, a full disk).

    Each count waits for NATS at most 0.5 s before the local limiter answers; a key's
    checks must not each wait so, one after the other, past the edge's wait for auth.
    """
    settings = auth_settings(farm_home, "", new_admin_key(), NATS_URL=fresh_nats_server.url)
    service = AuthService(settings)
    async with running_auth(settings, service) as auth:
        await assert_eventually(
            lambda: service.limits.shared, within=15, message="auth did not reach NATS"
        )
        created = await auth.create_key(auth.admin_key, tenant="acme")
        assert (await auth.check(f"Bearer {created.secret}")).code == OK

        async with fresh_nats_server.stalled():
            replies = await asyncio.gather(
                *(
                    asyncio.wait_for(
                        auth.check(f"Bearer {created.secret}", method="GET"),
                        EDGE_CHECK_TIMEOUT,
                    )
                    for _ in range(10)
                ),
                return_exceptions=True,
            )

    answers = [reply if isinstance(reply, BaseException) else reply.code for reply in replies]
    assert answers == [OK] * 10
