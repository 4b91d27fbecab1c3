"""A process's watch of the revoked credentials keeps up across a nats-server restart."""

import time

import pytest

from farm_core.key_revocations import KeyRevocationWatch, revoked_keys_bucket
from farm_core.nats_access import NatsAccess
from farm_core.queue import connect
from farm_core.revocation_watch import RevocationWatch, revocations_bucket
from farm_core.revocations import Revocation, RevokedBy, RevokedCredentials
from tests.conftest import NatsServer
from tests.helpers import assert_eventually

pytestmark = pytest.mark.integration


async def revoke(server: NatsServer, credential_id: str) -> None:
    """Publishes a revocation of `credential_id` as auth does."""
    connection = await connect(NatsAccess(server.url), "test-revoker")
    try:
        bucket = await revocations_bucket(connection.jetstream())
        revocation = Revocation(RevokedBy.ID, credential_id, time.time() + 3600)
        await bucket.put(revocation.key, revocation.encode())
    finally:
        await connection.close()


async def test_a_revocation_published_after_a_nats_restart_reaches_the_watch(
    fresh_nats_server: NatsServer,
) -> None:
    revoked = RevokedCredentials()
    watch = RevocationWatch(NatsAccess(fresh_nats_server.url), revoked)
    watch.start()
    try:
        await revoke(fresh_nats_server, "cred_before")
        await assert_eventually(
            lambda: revoked.loaded and revoked.is_revoked("cred_before", "agent:a", 0), within=10
        )

        fresh_nats_server.process.stop(timeout=5)
        fresh_nats_server.process.start()
        await revoke(fresh_nats_server, "cred_after")

        await assert_eventually(
            lambda: revoked.is_revoked("cred_after", "agent:a", 0),
            # nats-py alone notices the lost consumer after 10-20 s (two 5 s heartbeats); a
            # watch started anew on reconnecting is back within a second.
            within=10,
            message="a revocation made after the restart did not reach the watch in time",
        )
    finally:
        await watch.close()


async def test_the_agents_watch_hears_each_revoked_api_key(
    fresh_nats_server: NatsServer,
) -> None:
    heard: list[str] = []

    async def on_revoked(key_id: str) -> None:
        heard.append(key_id)

    watch = KeyRevocationWatch(NatsAccess(fresh_nats_server.url), on_revoked)
    watch.start()
    connection = await connect(NatsAccess(fresh_nats_server.url), "test-auth")
    try:
        bucket = await revoked_keys_bucket(connection.jetstream())  # as auth makes it
        await bucket.put("key_00000000000000aa", b"")
        await assert_eventually(lambda: "key_00000000000000aa" in heard, within=10)
    finally:
        await connection.close()
        await watch.close()
