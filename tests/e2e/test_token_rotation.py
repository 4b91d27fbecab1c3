"""Session tokens die with the secret of the key they were asked with.

A CDP token, and a view token with its live ticket, asked for with a key's secret
stop working once a rotation's grace ends that secret, and the sockets they opened
end then too; a token asked for with the new secret goes on. On the shared farm.
"""

import secrets

import aiohttp
import httpx
import pytest

from farm_cli.launcher.farm import LocalFarm
from farm_core.live_tokens import LIVE_COOKIE
from tests.e2e.conftest import Client, KeyFactory, http_client
from tests.e2e.sessions_api import Sessions, assert_drives, ends_of, ws_status

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]

GRACE_SECONDS = 4
"""The rotated key's grace for its old secret: long enough to use its token first."""


def rotate(admin: Client, key_id: str, grace_seconds: int) -> str:
    """RotateApiKey with that grace: the new secret."""
    answer = admin.http.post(f"/v1/apiKeys/{key_id}:rotate", json={"graceSeconds": grace_seconds})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["secret"])


def cdp_url(farm: LocalFarm, secret: str, session_id: str) -> str:
    """The CDP URL with a CDP token asked for with `secret`."""
    with http_client(farm, secret) as asking:
        answer = asking.post(f"/v1/sessions/{session_id}:cdpToken")
        assert answer.status_code == 200, answer.text
        return str(answer.json()["cdpUrl"])


async def test_a_cdp_token_ends_with_its_secrets_grace_and_one_of_the_new_secret_stays(
    farm: LocalFarm, admin: Client, make_key: KeyFactory
) -> None:
    tenant = f"token-rotation-{secrets.token_hex(4)}"
    asker, keeper = make_key("sessions", tenant=tenant), make_key("sessions", tenant=tenant)
    key_id = asker.api_key.id
    with http_client(farm, keeper.secret) as http, Sessions(http).opened() as session:
        old_url = cdp_url(farm, asker.secret, session["id"])
        async with aiohttp.ClientSession() as client:
            before = await client.ws_connect(old_url)
            new_secret = rotate(admin, key_id, GRACE_SECONDS)
            new_url = cdp_url(farm, new_secret, session["id"])
            # Within the grace, the old secret's token still opens sockets.
            during = await client.ws_connect(old_url)
            kept = await client.ws_connect(new_url)
            try:
                reason = (
                    f"API key {key_id} rotated: the secret this was opened with no longer works"
                )
                assert (
                    await ends_of([before, during], within=GRACE_SECONDS + 15)
                    == [(1008, reason)] * 2
                )
                assert await ws_status(old_url) == 401
                await assert_drives(kept)
            finally:
                await kept.close()
        assert await ws_status(new_url) == 101


def live_ticket(browser: httpx.Client, secret: str, session_id: str, farm: LocalFarm) -> str:
    """A view token asked for with `secret`, spent by `browser`: the live ticket it left."""
    with http_client(farm, secret) as asking:
        url = asking.post(f"/v1/sessions/{session_id}:viewToken").json()["url"]
    assert browser.get(url).status_code == 200
    ticket = browser.cookies[LIVE_COOKIE]
    browser.cookies.clear()
    return str(ticket)


async def test_a_view_token_and_its_ticket_end_with_the_secret_they_were_asked_with(
    farm: LocalFarm, admin: Client, make_key: KeyFactory
) -> None:
    tenant = f"view-rotation-{secrets.token_hex(4)}"
    asker, keeper = make_key("sessions", tenant=tenant), make_key("sessions", tenant=tenant)
    key_id = asker.api_key.id
    with (
        http_client(farm, keeper.secret) as http,
        Sessions(http).opened() as session,
        http_client(farm, None) as browser,
    ):
        live = f"/v1/sessions/{session['id']}/live"
        frames = http.base_url.join(f"{live}/frames").copy_with(scheme="ws")
        old_ticket = live_ticket(browser, asker.secret, session["id"], farm)
        with http_client(farm, asker.secret) as asking:
            unspent = asking.post(f"/v1/sessions/{session['id']}:viewToken").json()["url"]
        async with aiohttp.ClientSession() as client:
            watching = await client.ws_connect(
                str(frames), headers={"Cookie": f"{LIVE_COOKIE}={old_ticket}"}
            )
            # No grace: the old secret, and all it opened, end at once.
            new_secret = rotate(admin, key_id, 0)
            reason = f"API key {key_id} rotated: the secret this was opened with no longer works"
            assert await ends_of([watching], within=15) == [(1008, reason)]
        assert (
            browser.get(live, headers={"Cookie": f"{LIVE_COOKIE}={old_ticket}"}).status_code == 401
        )
        assert browser.get(unspent).status_code == 401
        new_ticket = live_ticket(browser, new_secret, session["id"], farm)
        assert (
            browser.get(live, headers={"Cookie": f"{LIVE_COOKIE}={new_ticket}"}).status_code == 200
        )
