"""The bootstrap admin key: made from FARM_ADMIN_KEY at start, idempotent across restarts."""

from pathlib import Path

import pytest

from tests.integration.auth.conftest import auth_settings, new_admin_key, running_auth

pytestmark = pytest.mark.integration


async def test_restart_with_the_same_key_keeps_one_bootstrap_key(
    farm_home: Path, database_url: str
) -> None:
    admin_key = new_admin_key()
    settings = auth_settings(farm_home, database_url, admin_key)
    async with running_auth(settings) as first:
        before = await first.identity(admin_key)

    async with running_auth(settings) as second:
        after = await second.identity(admin_key)
        keys = await second.list_keys(admin_key)

    assert after == before
    assert [(key.id, key.name) for key in keys] == [(before.key_id, "bootstrap-admin")]


async def test_new_admin_key_replaces_the_old_one(farm_home: Path, database_url: str) -> None:
    old_key, new_key = new_admin_key(), new_admin_key()
    async with running_auth(auth_settings(farm_home, database_url, old_key)) as first:
        before = await first.identity(old_key)

    async with running_auth(auth_settings(farm_home, database_url, new_key)) as second:
        after = await second.identity(new_key)
        refused = await second.check(f"Bearer {old_key}")
        keys = await second.list_keys(new_key)

    assert after.key_id == before.key_id
    assert refused.message == "unknown API key"
    assert len(keys) == 1


async def test_revoked_bootstrap_key_stays_revoked_after_restart(
    farm_home: Path, database_url: str
) -> None:
    admin_key = new_admin_key()
    settings = auth_settings(farm_home, database_url, admin_key)
    async with running_auth(settings) as first:
        me = await first.identity(admin_key)
        await first.revoke(admin_key, me.key_id)

    async with running_auth(settings) as second:
        refused = await second.check(f"Bearer {admin_key}")

    assert refused.message == "API key revoked"


async def test_no_admin_key_makes_no_bootstrap_key(farm_home: Path, database_url: str) -> None:
    async with running_auth(auth_settings(farm_home, database_url, None)) as auth:
        refused = await auth.check("Bearer bf_anything")

    assert refused.message == "unknown API key"
